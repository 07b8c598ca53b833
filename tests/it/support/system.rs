//! The machine the tests run on: free ports, files on disk, the programs some
//! suites need, openssl.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use super::needs::Need;

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Every file below `dir`, by path relative to it, with its bytes.
pub fn files_below(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .expect("below dir")
                    .display()
                    .to_string();
                out.insert(rel, std::fs::read(&p).expect("read file"));
            }
        }
    }
    out
}

/// Whether a suite that drives an outside program can run here. The build script
/// has already marked its tests ignored where it cannot; this covers a run with
/// `--ignored` or on another machine: the test says loudly that it skipped, or,
/// with the suite's REQUIRE_ variable set to 1 (as CI does), fails.
pub fn available(need: &Need) -> bool {
    let Some(why) = need.missing() else {
        return true;
    };
    assert!(!need.required(), "{}=1 is set, but {why}", need.require);
    eprintln!("\n!!! SKIPPED: {why} !!!\n");
    false
}

/// Runs `openssl ARGS` in `dir` with `input` on standard input; its output.
pub fn openssl(dir: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run openssl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write to openssl");
    let out = child.wait_with_output().expect("openssl output");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
