//! The migrations are embedded by `sqlx::migrate!`: a change to them must rebuild.
//!
//! The integration suites that drive Chromium, Postfix or Dovecot cannot run
//! without them. Where one is missing, its tests are compiled as ignored (so the
//! test summary names them, with the reason) and `cargo` prints a warning; with
//! its REQUIRE_ variable set to 1, as CI does, the build fails instead.

#[path = "tests/it/support/needs.rs"]
mod needs;

fn main() {
    println!("cargo::rerun-if-changed=migrations");
    println!("cargo::rerun-if-env-changed={}", needs::PRETEND_MISSING);
    // Installing a package is seen here; otherwise `touch build.rs` looks again.
    if let Some(packages) = needs::package_database() {
        println!("cargo::rerun-if-changed={}", packages.display());
    }
    for need in needs::ALL {
        println!("cargo::rustc-check-cfg=cfg({})", need.cfg);
        println!("cargo::rerun-if-env-changed={}", need.require);
        for program in need.programs {
            if let Some(var) = program.env {
                println!("cargo::rerun-if-env-changed={var}");
            }
        }
        let Some(why) = need.missing() else {
            for program in need.programs {
                println!("cargo::rerun-if-changed={}", program.path().display());
            }
            continue;
        };
        if need.required() {
            eprintln!("{}=1 is set, but {why}", need.require);
            std::process::exit(1);
        }
        println!("cargo::warning={why}: `cargo test` lists it as ignored");
        println!("cargo::rustc-cfg={}", need.cfg);
    }
}
