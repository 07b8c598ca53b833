//! The real binary, run as a site's author runs it.

use tokio::io::AsyncWriteExt;

use super::TestSite;

pub struct CliOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for CliOutput {
    fn from(out: std::process::Output) -> CliOutput {
        CliOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// `posthorn` with these arguments, logging only warnings.
fn posthorn(args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_posthorn"));
    command.args(args).env("RUST_LOG", "warn");
    command
}

impl TestSite {
    /// `--config` naming this site's config, then `args`.
    fn with_config<'a>(&self, config: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["--config", config];
        all.extend_from_slice(args);
        all
    }

    /// Runs the real binary against this site.
    pub async fn cli(&self, args: &[&str]) -> CliOutput {
        let config = self.config_path().display().to_string();
        Self::run_bin(&self.with_config(&config, args)).await
    }

    /// Runs the real binary against this site with `input` on standard input.
    pub async fn cli_with_input(&self, args: &[&str], input: &[u8]) -> CliOutput {
        let config = self.config_path().display().to_string();
        Self::run_bin_with_input(&self.with_config(&config, args), input).await
    }

    /// Runs the real binary with these arguments and `input` on standard input.
    pub async fn run_bin_with_input(args: &[&str], input: &[u8]) -> CliOutput {
        let mut child = posthorn(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run posthorn");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input).await.expect("write stdin");
        drop(stdin);
        child
            .wait_with_output()
            .await
            .expect("posthorn ends")
            .into()
    }

    /// Runs the real binary with exactly these arguments.
    pub async fn run_bin(args: &[&str]) -> CliOutput {
        posthorn(args)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .expect("run posthorn")
            .into()
    }
}
