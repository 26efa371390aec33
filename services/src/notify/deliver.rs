//! Delivery of `dunghan notify`: one attempt to POST a payload to the webhook, the durable
//! ledger of delivered event ids (so a restart or a replayed source never delivers an event
//! twice), and the dead-letter file for events that failed every attempt.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Ids delivered so far: `delivered.log` in the state directory, one JSON string per line,
/// appended and synced after each 2xx answer. A crash between the answer and the sync can
/// deliver that one event again, so payloads carry the id as an idempotency key.
#[derive(Debug)]
pub(crate) struct Ledger {
    file: File,
    ids: HashSet<String>,
}

impl Ledger {
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Ledger> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create state directory {}: {e}", dir.display()))?;
        let path = dir.join("delivered.log");
        let mut ids = HashSet::new();
        if let Ok(file) = File::open(&path) {
            for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
                let line = line?;
                match serde_json::from_str::<String>(&line) {
                    Ok(id) => {
                        ids.insert(id);
                    }
                    // A torn last line (a crash mid-append) is the only one that can be bad.
                    Err(e) => {
                        tracing::warn!(file = %path.display(), line = n + 1, error = %e, "skipping a torn ledger line")
                    }
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        Ok(Ledger { file, ids })
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Records a delivered id durably (fsync) before the source may move past it.
    pub(crate) fn record(&mut self, id: &str) -> anyhow::Result<()> {
        let mut line = serde_json::to_string(id)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()?;
        self.ids.insert(id.to_owned());
        Ok(())
    }
}

/// `dead-letter.jsonl` in the state directory: one record per event that could not be
/// delivered (`{"event": …, "attempts": N, "error": "…", "failed_at": "…"}`). The file is a
/// valid input of `dunghan notify --from-file` to redrive them.
#[derive(Debug)]
pub(crate) struct DeadLetters {
    path: PathBuf,
}

impl DeadLetters {
    pub(crate) fn new(dir: &Path) -> DeadLetters {
        DeadLetters {
            path: dir.join("dead-letter.jsonl"),
        }
    }

    pub(crate) fn write(
        &self,
        event: &dunghan_proto::v1::SlaEvent,
        attempts: u32,
        error: &str,
    ) -> anyhow::Result<()> {
        let record = serde_json::json!({
            "event": event,
            "attempts": attempts,
            "error": error,
            "failed_at": chrono::Utc::now().to_rfc3339(),
        });
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", self.path.display()))?;
        writeln!(file, "{record}")?;
        file.sync_data()?;
        Ok(())
    }
}

/// Why one attempt failed.
#[derive(Debug)]
pub(crate) enum AttemptError {
    /// Worth trying again: no connection, a time-out, 5xx, 408 or 429.
    Transient(String),
    /// Trying again cannot help: the webhook refused the payload (other 4xx).
    Permanent(String),
}

/// The webhook client (HTTP/1.1, keep-alive).
#[derive(Debug)]
pub(crate) struct Webhook {
    client: Client<HttpConnector, Full<Bytes>>,
    url: http::Uri,
    token: Option<String>,
    timeout: Duration,
}

impl Webhook {
    pub(crate) fn new(
        url: &str,
        token: Option<String>,
        timeout: Duration,
    ) -> anyhow::Result<Webhook> {
        Ok(Webhook {
            client: Client::builder(TokioExecutor::new()).build_http(),
            url: url.parse()?,
            token,
            timeout,
        })
    }

    /// One POST of `body` (JSON); Ok on a 2xx answer.
    pub(crate) async fn post(&self, id: &str, body: Bytes) -> Result<(), AttemptError> {
        let mut request = http::Request::post(self.url.clone())
            .header(
                http::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .header("Idempotency-Key", id)
            .header(
                http::header::USER_AGENT,
                concat!("dunghan-notify/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(token) = &self.token {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| AttemptError::Permanent(format!("bad request: {e}")))?;
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| AttemptError::Transient(format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| AttemptError::Transient(format!("{e}")))?;
        let status = response.status();
        // Read the (short) answer so the connection can be reused.
        let answer = tokio::time::timeout(self.timeout, response.into_body().collect())
            .await
            .ok()
            .and_then(Result::ok)
            .map(|b| {
                String::from_utf8_lossy(&b.to_bytes())
                    .chars()
                    .take(200)
                    .collect::<String>()
            })
            .unwrap_or_default();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error()
            || status == http::StatusCode::REQUEST_TIMEOUT
            || status == http::StatusCode::TOO_MANY_REQUESTS
        {
            Err(AttemptError::Transient(format!("HTTP {status}: {answer}")))
        } else {
            Err(AttemptError::Permanent(format!("HTTP {status}: {answer}")))
        }
    }
}
