//! Headless Chromium over WebDriver (Debian's chromium and chromium-driver).

use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};

use super::needs::BROWSER;

/// A browser session and its chromedriver, killed when dropped.
pub struct Browser {
    pub client: Client,
    _driver: tokio::process::Child,
}

/// Starts chromedriver and a headless Chromium, or says loudly that it cannot.
pub async fn start() -> Option<Browser> {
    if !super::available(&BROWSER) {
        return None;
    }
    let [chromium, chromedriver] = &BROWSER.programs else {
        unreachable!("the browser needs Chromium and chromedriver")
    };
    let port = super::free_port();
    let driver = tokio::process::Command::new(chromedriver.path())
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromedriver");
    let capabilities = serde_json::json!({
        "goog:chromeOptions": {
            "binary": chromium.path(),
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--window-size=1280,900"]
        }
    });
    let capabilities = capabilities.as_object().unwrap().clone();
    for _ in 0..100 {
        // chromedriver is on loopback: plain HTTP, no TLS stack needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => {
                return Some(Browser {
                    client,
                    _driver: driver,
                })
            }
            // chromedriver takes a moment to listen.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("could not connect to chromedriver");
}
