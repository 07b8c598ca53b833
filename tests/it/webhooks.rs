//! Providers' webhooks over real HTTP against the running server, with the
//! providers' documented example payloads (tests/data/webhooks) signed by keys
//! of the test's own: an SNS signing certificate (signature versions 1 and 2),
//! Postmark's basic auth, Mailgun's HMAC and SendGrid's ECDSA. A valid request
//! updates exactly its deliveries; a forged one gets 401 and changes nothing.

use std::collections::HashMap;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use posthorn::bounces::Reason;
use posthorn::delivery::Stop;
use posthorn::domain::SubscriberStatus;
use posthorn::store::DeliveryLogRow;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::{harness, openssl, Action, RunningServer, TestSite};

const TOPIC: &str = "arn:aws:sns:us-west-2:123456789012:ses-bounces";
const SECRET: &str = "webhook-s3cret-signing-key";

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/webhooks")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Stands in for Amazon SNS: a signing key and its certificate.
struct Sns {
    dir: tempfile::TempDir,
}

impl Sns {
    fn new() -> Sns {
        let dir = tempfile::tempdir().expect("sns dir");
        openssl(
            dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=sns.us-west-2.amazonaws.com",
                "-keyout",
                "key.pem",
                "-out",
                "cert.pem",
            ],
            b"",
        );
        Sns { dir }
    }

    fn certificate(&self) -> std::path::PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// An SNS message of `kind`, signed as SNS does (the string to sign is built
    /// here from the documented field list, independently of posthorn's).
    fn message(&self, kind: &str, message: &str, version: &str, extra: &[(&str, &str)]) -> Value {
        let mut fields: HashMap<&str, String> = HashMap::from([
            ("Type", kind.to_string()),
            ("MessageId", format!("{:x}", rand_id())),
            ("TopicArn", TOPIC.to_string()),
            ("Message", message.to_string()),
            ("Timestamp", "2026-11-23T10:00:00.000Z".to_string()),
        ]);
        for (k, v) in extra {
            fields.insert(k, v.to_string());
        }
        let signed: &[&str] = if kind == "Notification" {
            &[
                "Message",
                "MessageId",
                "Subject",
                "Timestamp",
                "TopicArn",
                "Type",
            ]
        } else {
            &[
                "Message",
                "MessageId",
                "SubscribeURL",
                "Timestamp",
                "Token",
                "TopicArn",
                "Type",
            ]
        };
        let text: String = signed
            .iter()
            .filter_map(|k| fields.get(k).map(|v| format!("{k}\n{v}\n")))
            .collect();
        let digest = if version == "1" { "-sha1" } else { "-sha256" };
        let signature = openssl(
            self.dir.path(),
            &["dgst", digest, "-sign", "key.pem"],
            text.as_bytes(),
        );
        let mut v = json!(fields);
        v["SignatureVersion"] = json!(version);
        v["Signature"] = json!(STANDARD.encode(signature));
        v["SigningCertURL"] =
            json!("https://sns.us-west-2.amazonaws.com/SimpleNotificationService-test.pem");
        v
    }
}

fn rand_id() -> u64 {
    rand::random()
}

/// SendGrid's side: a P-256 key; the site is given its public half as SendGrid
/// shows it (base64 DER SubjectPublicKeyInfo).
struct SendGrid {
    key: EcdsaKeyPair,
}

impl SendGrid {
    fn new() -> SendGrid {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .expect("generate key");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .expect("key");
        SendGrid { key }
    }

    fn public_key(&self) -> String {
        // The fixed DER prefix of a P-256 SubjectPublicKeyInfo, then the point.
        let mut der = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        der.extend_from_slice(self.key.public_key().as_ref());
        STANDARD.encode(der)
    }

    fn sign(&self, timestamp: &str, body: &[u8]) -> String {
        let mut signed = timestamp.as_bytes().to_vec();
        signed.extend_from_slice(body);
        let sig = self.key.sign(&SystemRandom::new(), &signed).expect("sign");
        STANDARD.encode(sig.as_ref())
    }
}

/// Mailgun's signature block for `timestamp` and `token`.
fn mailgun_signature(key: &str, timestamp: &str, token: &str) -> Value {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("hmac");
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    json!({ "timestamp": timestamp, "token": token, "signature": hex })
}

const READERS: [&str; 8] = [
    "jane@example.com",
    "richard@example.com",
    "john@example.com",
    "amy@example.com",
    "alice@example.com",
    "example@test.com",
    "other@test.com",
    "fine@example.org",
];

async fn statuses(site: &TestSite, server: &RunningServer) -> HashMap<String, DeliveryLogRow> {
    site.log_by_email(&server.app, "p").await
}

#[tokio::test(flavor = "multi_thread")]
async fn each_provider_updates_its_deliveries_and_forgeries_get_401() {
    let (smtp, site) = harness::site().await;
    smtp.set_rule(|_| Action::Accept);
    let sns = Sns::new();
    let sendgrid = SendGrid::new();
    site.append_config(&format!(
        "\n[bounces]\nwebhook_secret = \"{SECRET}\"\nsendgrid_public_key = \"{}\"\n\
         sns_certificate_file = \"{}\"\nsns_topic_arns = [\"{TOPIC}\"]\n",
        sendgrid.public_key(),
        sns.certificate().display()
    ));
    let app = site.app().await;
    site.add_subscribers(&app, &READERS).await;
    let now = site.new_post(&app, "p.md", "첫 편지").await;
    let sent = app.tick().run_once(now, Stop::default()).await.unwrap();
    assert_eq!(sent.deliveries.sent, READERS.len() as u64);
    app.close().await;
    let server = RunningServer::start(&site, false).await;
    let post = |path: &str| server.client.post(server.url(path));
    let unchanged = |before: &HashMap<String, DeliveryLogRow>,
                     after: &HashMap<String, DeliveryLogRow>| {
        for r in READERS {
            assert_eq!(before[r].status, after[r].status, "{r} changed");
        }
    };

    // Amazon SES through SNS, signature version 1 (SHA1withRSA).
    let before = statuses(&site, &server).await;
    let bounce = sns.message("Notification", &fixture("ses-bounce.json"), "1", &[]);
    let mut forged = bounce.clone();
    forged["Message"] = json!(fixture("ses-bounce.json").replace("jane@", "fine@"));
    let r = post("/webhooks/ses").json(&forged).send().await.unwrap();
    assert_eq!(r.status(), 401, "{}", r.text().await.unwrap());
    let mut other_topic = sns.message("Notification", &fixture("ses-bounce.json"), "1", &[]);
    other_topic["TopicArn"] = json!("arn:aws:sns:us-west-2:999999999999:not-ours");
    let r = post("/webhooks/ses")
        .json(&other_topic)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    unchanged(&before, &statuses(&site, &server).await);

    let r = post("/webhooks/ses").json(&bounce).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let log = statuses(&site, &server).await;
    assert_eq!(log["jane@example.com"].status, "bounced");
    assert!(log["jane@example.com"]
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("user unknown"));
    assert_eq!(log["fine@example.org"].status, "sent");
    assert_eq!(
        site.status_of(&server.app, "jane@example.com").await,
        Some(SubscriberStatus::Bounced)
    );
    // SNS delivers at least once: the same notification again counts once.
    let again: Value = post("/webhooks/ses")
        .json(&bounce)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["duplicates"], 1, "{again}");

    // Signature version 2 (SHA256withRSA): a complaint unsubscribes at once.
    let complaint = sns.message("Notification", &fixture("ses-complaint.json"), "2", &[]);
    let r = post("/webhooks/ses").json(&complaint).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(
        statuses(&site, &server).await["richard@example.com"].status,
        "complained"
    );
    assert_eq!(
        site.status_of(&server.app, "richard@example.com").await,
        Some(SubscriberStatus::Unsubscribed)
    );

    // A subscription is confirmed only at an Amazon SNS address.
    let subscribe = sns.message(
        "SubscriptionConfirmation",
        "You have chosen to subscribe to the topic.",
        "1",
        &[
            ("SubscribeURL", "https://evil.example/confirm?Token=x"),
            ("Token", "x"),
        ],
    );
    let r = post("/webhooks/ses").json(&subscribe).send().await.unwrap();
    assert_eq!(r.status(), 400, "{}", r.text().await.unwrap());

    // Postmark: basic auth with the webhook secret as password.
    let before = statuses(&site, &server).await;
    let body = fixture("postmark-bounce.json");
    for auth in [None, Some(("postmark", "wrong"))] {
        let mut req = post("/webhooks/postmark").body(body.clone());
        if let Some((user, pass)) = auth {
            req = req.basic_auth(user, Some(pass));
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    unchanged(&before, &statuses(&site, &server).await);
    for name in ["postmark-bounce.json", "postmark-spam-complaint.json"] {
        let r = post("/webhooks/postmark")
            .basic_auth("postmark", Some(SECRET))
            .body(fixture(name))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}: {}", r.text().await.unwrap());
    }
    let log = statuses(&site, &server).await;
    assert_eq!(log["john@example.com"].status, "bounced");
    assert_eq!(log["amy@example.com"].status, "complained");

    // Mailgun: HMAC-SHA256 of timestamp and token with the signing key.
    let before = statuses(&site, &server).await;
    let mut failed: Value = serde_json::from_str(&fixture("mailgun-failed.json")).unwrap();
    // The documented signature is for Mailgun's own example key: refused here.
    let r = post("/webhooks/mailgun")
        .json(&failed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    unchanged(&before, &statuses(&site, &server).await);
    // A correct signature made long ago (or in 1970) is refused: Mailgun signs
    // only the timestamp and token, so an old one could carry any body.
    for old in ["0", "1763892000"] {
        failed["signature"] = mailgun_signature(SECRET, old, "f00dfeedc0ffee1234567890abcdef");
        let r = post("/webhooks/mailgun")
            .json(&failed)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "timestamp {old}");
        unchanged(&before, &statuses(&site, &server).await);
    }
    let now = chrono::Utc::now().timestamp().to_string();
    failed["signature"] = mailgun_signature(SECRET, &now, "f00dfeedc0ffee1234567890abcdef");
    let r = post("/webhooks/mailgun")
        .json(&failed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(
        statuses(&site, &server).await["alice@example.com"].status,
        "bounced"
    );
    // The same token again, with another body: refused, nothing changes.
    let before = statuses(&site, &server).await;
    let mut replay = failed.clone();
    replay["event-data"]["recipient"] = Value::from("fine@example.org");
    replay["event-data"]["id"] = Value::from("another-event");
    let r = post("/webhooks/mailgun")
        .json(&replay)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a replayed token");
    unchanged(&before, &statuses(&site, &server).await);

    // SendGrid: ECDSA P-256 over timestamp and the exact body.
    let before = statuses(&site, &server).await;
    let body = fixture("sendgrid-events.json");
    let timestamp = "1763892000";
    let signature = sendgrid.sign(timestamp, body.as_bytes());
    let tampered = body.replace("other@test.com", "fine@example.org");
    let r = post("/webhooks/sendgrid")
        .header("X-Twilio-Email-Event-Webhook-Signature", &signature)
        .header("X-Twilio-Email-Event-Webhook-Timestamp", timestamp)
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    unchanged(&before, &statuses(&site, &server).await);
    let reply: Value = post("/webhooks/sendgrid")
        .header("X-Twilio-Email-Event-Webhook-Signature", &signature)
        .header("X-Twilio-Email-Event-Webhook-Timestamp", timestamp)
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["recorded"], 2, "{reply}");
    assert_eq!(reply["ignored"], 1, "the processed event: {reply}");
    let log = statuses(&site, &server).await;
    assert_eq!(log["example@test.com"].status, "bounced");
    assert_eq!(log["other@test.com"].status, "complained");
    assert_eq!(log["fine@example.org"].status, "sent");

    // Every provider's event is kept with its reason, as a mailed report is.
    let reports = server.app.bounces().list(100).await.unwrap();
    assert!(reports.len() >= 6, "{reports:?}");
    for r in &reports {
        let why = r.reason.as_deref().unwrap_or_default();
        let reason: Reason = why.parse().unwrap_or_else(|e| panic!("{e}: {r:?}"));
        if r.kind == "complaint" {
            assert_eq!(reason, Reason::Feedback, "{r:?}");
        }
        if r.hard {
            assert!(
                reason.address_gone(),
                "a hard report says the address is gone: {r:?}"
            );
        }
    }

    // Unknown providers do not exist.
    let r = post("/webhooks/mail").body("{}").send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_provider_that_is_not_set_up_is_not_there() {
    let site = TestSite::new(None);
    let server = RunningServer::start(&site, false).await;
    for provider in ["ses", "postmark", "mailgun", "sendgrid"] {
        let r = server
            .client
            .post(server.url(&format!("/webhooks/{provider}")))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{provider}");
    }
    // Providers batch events: a webhook takes far more than a form's 16 KiB.
    let big = format!("[{}]", vec!["{\"event\":\"processed\"}"; 20_000].join(","));
    assert!(big.len() > 300_000);
    let r = server
        .client
        .post(server.url("/webhooks/sendgrid"))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "refused for its setup, not its size");

    // Nobody can make the server hold a body for a provider that is not set
    // up: the answer comes before the body does.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap();
    socket
        .write_all(
            b"POST /webhooks/sendgrid HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 4194304\r\n\r\n[",
        )
        .await
        .unwrap();
    let mut answer = vec![0; 64];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), socket.read(&mut answer))
        .await
        .expect("an answer before the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
}
