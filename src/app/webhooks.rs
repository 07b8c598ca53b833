//! Providers' webhooks (`POST /webhooks/{provider}`): authenticated as each
//! provider documents, then each event is read into a report and recorded by
//! the same [`Bounces::record`] the mail intakes use. A request that fails
//! authentication changes nothing.

use std::sync::Arc;

use chrono::Utc;
use serde_json::Value;

use super::bounces::fingerprint;
use super::Bounces;
use crate::bounces::providers;
use crate::bounces::webhooks::{self, SnsKind, SnsMessage, WebhookError};
use crate::domain::ReportSource;
use crate::error::Error;

/// What a webhook request did.
#[derive(Debug, Default, serde::Serialize)]
pub struct WebhookReply {
    /// Recipients recorded (bounce, delay or complaint).
    pub recorded: usize,
    /// Events recorded before (a provider's retry): nothing changed.
    pub duplicates: usize,
    /// Events that are not about a failure (deliveries, opens…): not recorded.
    pub ignored: usize,
    /// An SNS subscription was confirmed.
    pub confirmed: bool,
}

/// Why a webhook request failed: the request, or the database behind it.
#[derive(Debug, thiserror::Error)]
pub enum WebhookFailure {
    #[error(transparent)]
    Refused(#[from] WebhookError),
    #[error(transparent)]
    Store(#[from] Error),
}

impl Bounces {
    /// Whether `provider`'s webhook is set up: a request to one that is not is
    /// answered before its body is read.
    pub fn webhook_set_up(&self, provider: ReportSource) -> bool {
        let config = &self.context.config.bounces;
        match provider {
            ReportSource::Ses => !config.sns_topic_arns.is_empty(),
            ReportSource::Postmark | ReportSource::Mailgun => config.webhook_secret.is_some(),
            ReportSource::Sendgrid => self.sendgrid.is_some(),
            ReportSource::Mail | ReportSource::Imap => false,
        }
    }

    /// Handles one webhook request from `provider`. `header` looks up a request
    /// header by name.
    pub async fn webhook(
        &self,
        provider: ReportSource,
        header: impl Fn(&str) -> Option<String>,
        body: &[u8],
    ) -> Result<WebhookReply, WebhookFailure> {
        let config = &self.context.config.bounces;
        let not_configured = |key: &str| {
            WebhookError::NotConfigured(format!(
                "the {provider} webhook is not set up: set bounces.{key}"
            ))
        };
        let json = || {
            serde_json::from_slice::<Value>(body)
                .map_err(|e| WebhookError::BadRequest(format!("the body is not JSON: {e}")))
        };
        // Authenticate first: nothing is read from a request that fails.
        let events: Vec<(Value, String)> = match provider {
            ReportSource::Postmark => {
                let secret = config
                    .webhook_secret
                    .as_ref()
                    .ok_or_else(|| not_configured("webhook_secret"))?;
                webhooks::check_basic_auth(header("authorization").as_deref(), secret.expose())?;
                let event = json()?;
                let id = event_id(&event, &["RecordType"], &["ID"]);
                vec![(event, id)]
            }
            ReportSource::Mailgun => {
                let key = config
                    .webhook_secret
                    .as_ref()
                    .ok_or_else(|| not_configured("webhook_secret"))?;
                let payload = json()?;
                webhooks::check_mailgun(&payload, key.expose(), Utc::now(), &self.mailgun_tokens)?;
                let id = payload
                    .get("event-data")
                    .map(|e| event_id(e, &["event"], &["id"]))
                    .unwrap_or_default();
                vec![(payload, id)]
            }
            ReportSource::Sendgrid => {
                let key = self
                    .sendgrid
                    .as_ref()
                    .ok_or_else(|| not_configured("sendgrid_public_key"))?;
                key.check(
                    header("x-twilio-email-event-webhook-signature").as_deref(),
                    header("x-twilio-email-event-webhook-timestamp").as_deref(),
                    body,
                )?;
                match json()? {
                    Value::Array(events) => events
                        .into_iter()
                        .map(|e| {
                            let id = event_id(&e, &["event"], &["sg_event_id"]);
                            (e, id)
                        })
                        .collect(),
                    _ => {
                        return Err(WebhookError::BadRequest(
                            "SendGrid posts an array of events".into(),
                        )
                        .into())
                    }
                }
            }
            ReportSource::Ses => {
                if config.sns_topic_arns.is_empty() {
                    return Err(not_configured("sns_topic_arns").into());
                }
                let sns = SnsMessage::parse(&json()?)?;
                // The topic first: a signature only proves that SNS sent it.
                if !config.sns_topic_arns.contains(&sns.topic_arn) {
                    return Err(WebhookError::Unauthorized(format!(
                        "topic {} is not in bounces.sns_topic_arns",
                        sns.topic_arn
                    ))
                    .into());
                }
                let certificate = self.sns_certificate(&sns.signing_cert_url).await?;
                sns.verify(&certificate, Utc::now())?;
                match sns.kind {
                    SnsKind::SubscriptionConfirmation => {
                        let url = sns.subscribe_url.as_deref().unwrap_or("");
                        webhooks::fetch_from_sns(url).await?;
                        tracing::info!(topic = %sns.topic_arn, "SNS subscription confirmed");
                        return Ok(WebhookReply {
                            confirmed: true,
                            ..WebhookReply::default()
                        });
                    }
                    SnsKind::UnsubscribeConfirmation => {
                        tracing::warn!(topic = %sns.topic_arn, "SNS says this endpoint was unsubscribed");
                        return Ok(WebhookReply::default());
                    }
                    SnsKind::Notification => {
                        let event = serde_json::from_str(&sns.message).map_err(|e| {
                            WebhookError::BadRequest(format!("the SNS Message is not JSON: {e}"))
                        })?;
                        vec![(event, format!("sns:{}", sns.message_id))]
                    }
                }
            }
            ReportSource::Mail | ReportSource::Imap => {
                return Err(WebhookError::NotConfigured(format!(
                    "{provider} is not a webhook provider"
                ))
                .into())
            }
        };
        let mut reply = WebhookReply::default();
        for (event, id) in events {
            let read = match provider {
                ReportSource::Ses => providers::ses(&event),
                ReportSource::Postmark => providers::postmark(&event),
                ReportSource::Mailgun => providers::mailgun(&event),
                _ => providers::sendgrid(&event),
            };
            let Some(mut report) = read else {
                reply.ignored += 1;
                continue;
            };
            let text = event.to_string();
            report.find_tracks(text.as_bytes(), self.reader.tracks());
            // The provider's event id names the event; without one, its bytes do.
            let name = if id.is_empty() {
                fingerprint(text.as_bytes())
            } else {
                format!("{provider}:{id}")
            };
            let done = self.record(&report, &name, provider).await?;
            if done.duplicate {
                reply.duplicates += 1;
            } else if done.recorded.is_empty() {
                reply.ignored += 1;
            }
            reply.recorded += done.recorded.len();
        }
        Ok(reply)
    }

    /// The SNS signing certificate: `sns_certificate_file` when set, else fetched
    /// from Amazon; either is read once and kept.
    async fn sns_certificate(&self, url: &str) -> Result<Arc<Vec<u8>>, WebhookFailure> {
        let file = self
            .context
            .config
            .bounces
            .sns_certificate_file
            .as_ref()
            .map(|f| self.context.config.path(f));
        let key = file
            .as_ref()
            .map_or_else(|| url.to_string(), |f| f.display().to_string());
        if let Some(known) = self.cached_certificate(&key) {
            return Ok(known);
        }
        let loaded = Arc::new(match &file {
            Some(path) => std::fs::read(path).map_err(|e| Error::io(path, e))?,
            None => webhooks::fetch_from_sns(url).await?,
        });
        if let Ok(mut cache) = self.certificates.lock() {
            cache.insert(key, loaded.clone());
        }
        Ok(loaded)
    }

    fn cached_certificate(&self, url: &str) -> Option<Arc<Vec<u8>>> {
        self.certificates.lock().ok()?.get(url).cloned()
    }
}

/// `kind:id` from an event's fields, or "" when it has no id.
fn event_id(event: &Value, kind: &[&str], id: &[&str]) -> String {
    let text = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| {
                event.get(*k).and_then(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .or_else(|| v.as_i64().map(|n| n.to_string()))
                })
            })
            .unwrap_or_default()
    };
    let id = text(id);
    if id.is_empty() {
        String::new()
    } else {
        format!("{}:{id}", text(kind))
    }
}
