//! The set-up most tests start from, in one call: a real SMTP server, a site in a
//! temp folder that mails it, and the app open on that site or its web server
//! running. Each returns its parts for the test to name:
//! `let (smtp, site, app) = spawn().await;`.

use posthorn::App;

use super::{RunningServer, SmtpServer, TestSite};

/// An SMTP server and a site that sends to it, the app not yet opened.
pub async fn site() -> (SmtpServer, TestSite) {
    let smtp = SmtpServer::start().await;
    let site = TestSite::new(Some(smtp.port));
    (smtp, site)
}

/// An SMTP server, a site sending to it, and the app opened on the site.
pub async fn spawn() -> (SmtpServer, TestSite, App) {
    spawn_with(|_| {}).await
}

/// As `spawn`, with the site's config changed by `configure` before the app opens.
pub async fn spawn_with(configure: impl FnOnce(&TestSite)) -> (SmtpServer, TestSite, App) {
    let (smtp, site) = site().await;
    configure(&site);
    let app = site.app().await;
    (smtp, site, app)
}

/// An SMTP server, a site sending to it, and its web server running on its own
/// address (the site's base URL, so links in emails can be followed).
pub async fn serve() -> (SmtpServer, TestSite, RunningServer) {
    serve_with(|_| {}).await
}

/// As `serve`, with the site's config changed by `configure` before it starts.
pub async fn serve_with(
    configure: impl FnOnce(&TestSite),
) -> (SmtpServer, TestSite, RunningServer) {
    let (smtp, site) = site().await;
    configure(&site);
    let server = RunningServer::start(&site, true).await;
    (smtp, site, server)
}
