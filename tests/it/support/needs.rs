//! What the suites that drive outside programs need: Chromium, Postfix, Dovecot.
//! The build script reads this (a missing program marks those tests ignored, with
//! the reason, and says so in a warning) and so do the tests when they start.

use std::path::{Path, PathBuf};

/// A program a suite runs, at a path a variable may override.
pub struct Program {
    pub default: &'static str,
    pub env: Option<&'static str>,
}

impl Program {
    pub fn path(&self) -> PathBuf {
        self.env
            .and_then(std::env::var_os)
            .map(PathBuf::from)
            .unwrap_or_else(|| self.default.into())
    }
}

pub struct Need {
    /// The name `POSTHORN_TEST_PRETEND_MISSING` knows it by.
    pub name: &'static str,
    /// The cfg the build script sets when it is missing.
    pub cfg: &'static str,
    pub what: &'static str,
    pub programs: &'static [Program],
    /// The program is a system daemon, started as root.
    pub root: bool,
    /// A Python module the suite imports (`python3 -c "import …"` must work).
    pub python_module: Option<&'static str>,
    /// Set to 1 (as CI does), a missing program is a failure, not a skip.
    pub require: &'static str,
    pub install: &'static str,
}

pub const BROWSER: Need = Need {
    name: "browser",
    cfg: "no_browser",
    what: "the browser tests",
    programs: &[
        Program {
            default: "/usr/bin/chromium",
            env: Some("CHROMIUM"),
        },
        Program {
            default: "/usr/bin/chromedriver",
            env: Some("CHROMEDRIVER"),
        },
    ],
    root: false,
    python_module: None,
    require: "REQUIRE_BROWSER_TESTS",
    install: "apt-get install chromium chromium-driver",
};

pub const POSTFIX: Need = Need {
    name: "postfix",
    cfg: "no_postfix",
    what: "the Postfix relay test",
    programs: &[Program {
        default: "/usr/sbin/postfix",
        env: None,
    }],
    root: true,
    python_module: None,
    require: "REQUIRE_POSTFIX",
    install: "apt-get install postfix",
};

pub const DOVECOT: Need = Need {
    name: "dovecot",
    cfg: "no_dovecot",
    what: "the IMAP test",
    programs: &[Program {
        default: "/usr/sbin/dovecot",
        env: None,
    }],
    root: true,
    python_module: None,
    require: "REQUIRE_DOVECOT",
    install: "apt-get install dovecot-imapd",
};

pub const PROMETHEUS: Need = Need {
    name: "prometheus",
    cfg: "no_prometheus_parser",
    what: "the /metrics test (Prometheus's own parser)",
    programs: &[Program {
        default: "/usr/bin/python3",
        env: None,
    }],
    root: false,
    python_module: Some("prometheus_client"),
    require: "REQUIRE_PROMETHEUS_PARSER",
    install: "pip install prometheus-client",
};

pub const ALL: [&Need; 4] = [&BROWSER, &POSTFIX, &DOVECOT, &PROMETHEUS];

/// Names (`browser,postfix`) to treat as missing though installed, to see what a
/// machine without them sees.
pub const PRETEND_MISSING: &str = "POSTHORN_TEST_PRETEND_MISSING";

impl Need {
    /// Why the suite cannot run here, or `None` when it can.
    pub fn missing(&self) -> Option<String> {
        let pretend = std::env::var(PRETEND_MISSING).unwrap_or_default();
        if pretend.split(',').any(|n| n.trim() == self.name) {
            return Some(format!(
                "{} cannot run: {PRETEND_MISSING}={pretend}",
                self.what
            ));
        }
        let absent: Vec<String> = self
            .programs
            .iter()
            .map(Program::path)
            .filter(|p| !p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !absent.is_empty() {
            return Some(format!(
                "{} needs {} ({})",
                self.what,
                absent.join(" and "),
                self.install
            ));
        }
        if self.root && !is_root() {
            return Some(format!("{} needs root", self.what));
        }
        if let Some(module) = self.python_module {
            let imports = std::process::Command::new("python3")
                .args(["-c", &format!("import {module}")])
                .output()
                .is_ok_and(|o| o.status.success());
            if !imports {
                return Some(format!(
                    "{} needs the Python module {module} ({})",
                    self.what, self.install
                ));
            }
        }
        None
    }

    /// Whether the environment says the suite must run.
    pub fn required(&self) -> bool {
        std::env::var(self.require).is_ok_and(|v| v == "1")
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
}

/// The file a package install changes, where there is one (Debian's).
pub fn package_database() -> Option<&'static Path> {
    Some(Path::new("/var/lib/dpkg/status")).filter(|p| p.exists())
}
