//! `dunghan notify`, the alert handler: reads raised events from a source, routes each by
//! department and escalation level through the directory file, renders the apology letter
//! for APOLOGY_REQUIRED, and delivers one JSON payload per event to a webhook with retries,
//! exponential backoff, a durable ledger of delivered ids, and a dead-letter file.

pub(crate) mod config;
pub(crate) mod deliver;
pub(crate) mod directory;
pub(crate) mod letter;
pub(crate) mod source;

use std::future::Future;

use bytes::Bytes;
use dunghan_core::Catalog;
use dunghan_proto::v1::{SlaEvent, SlaEventKind};

use config::WebhookSection;
use deliver::{AttemptError, DeadLetters, Ledger, Webhook};
use directory::Directory;
use source::EventSource;

/// What happened to the events of one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) delivered: u64,
    /// Already in the ledger: not delivered again.
    pub(crate) duplicates: u64,
    /// Kinds not delivered by configuration.
    pub(crate) skipped: u64,
    pub(crate) dead_lettered: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} delivered, {} already delivered, {} skipped, {} dead-lettered",
            self.delivered, self.duplicates, self.skipped, self.dead_lettered
        )
    }
}

/// The routing, rendering and delivery state.
#[derive(Debug)]
pub(crate) struct Notifier {
    pub(crate) directory: Directory,
    pub(crate) catalog: Option<Catalog>,
    pub(crate) kinds: Vec<String>,
    pub(crate) webhook: Webhook,
    pub(crate) retry: WebhookSection,
    pub(crate) ledger: Ledger,
    pub(crate) dead_letters: DeadLetters,
    pub(crate) summary: Summary,
}

/// The kind as the metrics and the payload name it: `apology_required`.
pub(crate) fn kind_name(kind: SlaEventKind) -> String {
    kind.as_str_name()
        .trim_start_matches("SLA_EVENT_KIND_")
        .to_ascii_lowercase()
}

fn rfc3339(ts: Option<&dunghan_proto::pbjson_types::Timestamp>) -> Option<String> {
    use chrono::TimeZone;
    let t = ts?;
    let offset = chrono::FixedOffset::east_opt(7 * 3600)?;
    offset
        .timestamp_opt(t.seconds, t.nanos.max(0) as u32)
        .single()
        .map(|d| d.to_rfc3339())
}

impl Notifier {
    /// The webhook payload of one event.
    pub(crate) fn payload(&self, event: &SlaEvent) -> serde_json::Value {
        let mut payload = serde_json::json!({
            "id": event.id,
            "kind": kind_name(event.kind()),
            "level": event.level,
            "dossier_id": event.dossier_id,
            "agency_id": event.agency_id,
            "agency_name": self.directory.agency_name(&event.agency_id),
            "department_id": event.department_id,
            "department_name": if event.department_id.is_empty() {
                String::new()
            } else {
                self.directory.department_name(&event.department_id)
            },
            "step_id": event.step_id,
            "procedure_code": event.procedure_code,
            "raised_at": rfc3339(event.raised_at.as_ref()),
            "deadline": rfc3339(event.deadline.as_ref()),
            "reason": event.reason,
            "recipients": self.directory.route(event),
            "centre": self.directory.centre_name(),
            "event": event,
        });
        if event.kind() == SlaEventKind::ApologyRequired {
            payload["letter"] = serde_json::json!(letter::render(
                event,
                &self.directory,
                self.catalog.as_ref()
            ));
        }
        payload
    }

    /// Delivers one event unless it was delivered before or its kind is not delivered.
    pub(crate) async fn handle(&mut self, event: &SlaEvent) -> anyhow::Result<()> {
        let kind = kind_name(event.kind());
        if !self.kinds.contains(&kind) {
            self.summary.skipped += 1;
            return Ok(());
        }
        if self.ledger.contains(&event.id) {
            tracing::debug!(event = %event.id, "already delivered");
            self.summary.duplicates += 1;
            return Ok(());
        }
        let body = Bytes::from(serde_json::to_vec(&self.payload(event))?);
        let mut attempt = 0;
        let error = loop {
            attempt += 1;
            match self.webhook.post(&event.id, body.clone()).await {
                Ok(()) => {
                    self.ledger.record(&event.id)?;
                    self.summary.delivered += 1;
                    tracing::info!(event = %event.id, kind = %kind, attempts = attempt, "delivered");
                    return Ok(());
                }
                Err(AttemptError::Permanent(e)) => break e,
                Err(AttemptError::Transient(e)) if attempt >= self.retry.max_attempts => break e,
                Err(AttemptError::Transient(e)) => {
                    let wait = self.retry.backoff(attempt);
                    tracing::warn!(event = %event.id, attempt, error = %e, retry_in_ms = wait.as_millis() as u64, "webhook failed; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        };
        self.dead_letters.write(event, attempt, &error)?;
        self.summary.dead_lettered += 1;
        tracing::error!(event = %event.id, kind = %kind, attempts = attempt, error = %error, "not delivered: written to the dead-letter file");
        Ok(())
    }

    /// Handles events until the source ends or `stop` completes; an event cut off by `stop`
    /// is neither recorded nor acknowledged.
    pub(crate) async fn run<S: EventSource>(
        &mut self,
        source: &mut S,
        stop: impl Future<Output = ()>,
    ) -> anyhow::Result<Summary> {
        tokio::pin!(stop);
        loop {
            let event = tokio::select! {
                next = source.next() => next?,
                () = &mut stop => break,
            };
            let Some(event) = event else { break };
            tokio::select! {
                done = self.handle(&event) => done?,
                () = &mut stop => break,
            }
            source.ack(&event).await?;
        }
        Ok(self.summary)
    }
}
