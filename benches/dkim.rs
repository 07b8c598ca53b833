//! DKIM signing rate on every core: messages built and signed per second with an
//! RSA-2048 and an Ed25519 key, against building the same message unsigned in the
//! same run. Keys come from `openssl`, as an author would make them.
//!
//!     cargo bench --bench dkim

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use posthorn::config::{Config, DkimConfig};
use posthorn::delivery::dkim::Signer;
use posthorn::delivery::message::transactional;
use posthorn::domain::EmailAddress;

const CONFIG: &str = r#"
[site]
title = "벤치마크"
base_url = "https://essays.example.com"
author = "Bench"
[email]
from = "Bench <bench@example.com>"
"#;

fn openssl(args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .status()
        .expect("openssl is installed");
    assert!(status.success(), "openssl {args:?}");
}

/// Messages per second over `threads` threads for about `seconds`.
fn rate(config: &Config, signer: Option<&Signer>, threads: usize, seconds: f64) -> f64 {
    let to = EmailAddress::parse("reader@example.com").unwrap();
    let para = "한 해에 책을 몇 권 읽었는지 세는 일을 그만둔 지 삼 년이 되었다. Walking to work for a year. ";
    let text = para.repeat(60);
    let html = format!("<p>{}</p>", para.repeat(60));
    let start = Instant::now();
    let deadline = Duration::from_secs_f64(seconds);
    let total: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut n = 0;
                    while start.elapsed() < deadline {
                        let m = transactional(
                            config,
                            signer,
                            &to,
                            "벤치마크 에세이",
                            text.clone(),
                            html.clone(),
                        )
                        .unwrap();
                        std::hint::black_box(m.text.len());
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = dir.path().join("rsa.pem");
    let ed = dir.path().join("ed.pem");
    openssl(&["genrsa", "-out", rsa.to_str().unwrap(), "2048"]);
    openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        ed.to_str().unwrap(),
    ]);
    let config = Config::from_toml_str(CONFIG, Path::new("config.toml")).unwrap();
    let settings = DkimConfig {
        domain: "example.com".into(),
        selector: "posthorn".into(),
        private_key_file: rsa.clone(),
        second_private_key_file: None,
        second_selector: Some("posthorn-ed".into()),
    };
    let rsa_signer = Signer::load(&settings, &rsa, None).unwrap();
    let ed_signer = Signer::load(&settings, &ed, None).unwrap();
    let dual_signer = Signer::load(&settings, &rsa, Some(&ed)).unwrap();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let plain = rate(&config, None, threads, 3.0);
    let rsa_rate = rate(&config, Some(&rsa_signer), threads, 3.0);
    let ed_rate = rate(&config, Some(&ed_signer), threads, 3.0);
    let dual_rate = rate(&config, Some(&dual_signer), threads, 3.0);
    // The reference: OpenSSL's own RSA-2048 signing rate on every core, now.
    let speed = std::process::Command::new("openssl")
        .args([
            "speed",
            "-multi",
            &threads.to_string(),
            "-seconds",
            "3",
            "rsa2048",
        ])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let openssl_signs = speed
        .lines()
        .find(|l| l.trim_start().starts_with("rsa 2048") || l.starts_with("rsa  2048"))
        .and_then(|l| l.split_whitespace().nth(5))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    println!("\nDKIM signing, ~21 KB Korean message, {threads} threads (all cores)");
    println!("  build, unsigned     {plain:10.0} msg/s");
    println!(
        "  build + RSA-2048    {rsa_rate:10.0} msg/s  ratio to unsigned {:.2}",
        rsa_rate / plain
    );
    println!(
        "  build + Ed25519     {ed_rate:10.0} msg/s  ratio to unsigned {:.2} (goal 0.80)",
        ed_rate / plain
    );
    println!(
        "  build + RSA + Ed25519 (dual) {dual_rate:10.0} msg/s  ratio to unsigned {:.2}",
        dual_rate / plain
    );
    if openssl_signs > 0.0 {
        println!(
            "  openssl speed -multi {threads} rsa2048: {openssl_signs:.0} signs/s; RSA-signed build / OpenSSL {:.2} (goal 0.80)",
            rsa_rate / openssl_signs
        );
    }
}
