//! Where `dunghan notify` reads raised events from. [`EventSource`] is the seam: the gRPC
//! stream of a node (`SlaService.WatchSlaEvents`) and a JSON-lines file (a `dunghan replay`
//! output or a dead-letter file, for backfills and redrives) implement it; a Kafka source
//! on `dunghan.sla-events` implements it the same way, committing its offset in `ack`.

use std::future::Future;
use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use dunghan_proto::v1::sla_service_client::SlaServiceClient;
use dunghan_proto::v1::{SlaEvent, WatchSlaEventsRequest};

/// A source of raised events.
pub(crate) trait EventSource: Send {
    /// The next event, or `None` when the source has no more (a file's end). A live source
    /// waits for the next event and reconnects by itself after failures.
    fn next(&mut self) -> impl Future<Output = anyhow::Result<Option<SlaEvent>>> + Send;

    /// The event is done with (delivered, skipped or dead-lettered). A source with positions
    /// stores its position here, after the outcome is durable, so a restart resumes after
    /// it; the notifier's ledger of delivered ids makes a replayed event a no-op.
    fn ack(&mut self, event: &SlaEvent) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// The `WatchSlaEvents` stream of a node. It carries events raised from the moment it is
/// opened: events raised while the notifier is down are not replayed (use a Kafka source,
/// or backfill them from a file), and after a broken stream it reconnects with backoff.
#[derive(Debug)]
pub(crate) struct GrpcSource {
    endpoint: String,
    request: WatchSlaEventsRequest,
    stream: Option<tonic::Streaming<SlaEvent>>,
    failures: u32,
}

impl GrpcSource {
    pub(crate) fn new(endpoint: String, agency: String, department: String) -> GrpcSource {
        GrpcSource {
            endpoint,
            request: WatchSlaEventsRequest {
                agency_id: agency,
                department_id: department,
            },
            stream: None,
            failures: 0,
        }
    }

    async fn connect(&mut self) -> anyhow::Result<tonic::Streaming<SlaEvent>> {
        let channel = tonic::transport::Endpoint::from_shared(self.endpoint.clone())?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await?;
        let stream = SlaServiceClient::new(channel)
            .watch_sla_events(self.request.clone())
            .await?
            .into_inner();
        Ok(stream)
    }

    /// Opens the stream now (the first events count from here); later failures reconnect.
    pub(crate) async fn open(&mut self) -> anyhow::Result<()> {
        let stream = self.connect().await?;
        tracing::info!(endpoint = %self.endpoint, "watching raised events");
        self.stream = Some(stream);
        Ok(())
    }
}

impl EventSource for GrpcSource {
    async fn next(&mut self) -> anyhow::Result<Option<SlaEvent>> {
        loop {
            if self.stream.is_none() {
                match self.connect().await {
                    Ok(stream) => {
                        tracing::info!(endpoint = %self.endpoint, "watching raised events again");
                        self.stream = Some(stream);
                    }
                    Err(e) => {
                        self.failures += 1;
                        let wait = Duration::from_millis(200 << self.failures.min(6));
                        tracing::warn!(endpoint = %self.endpoint, error = %e, retry_in_ms = wait.as_millis() as u64, "cannot watch the node");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                }
            }
            let Some(stream) = self.stream.as_mut() else {
                continue;
            };
            match stream.message().await {
                Ok(Some(event)) => {
                    self.failures = 0;
                    return Ok(Some(event));
                }
                Ok(None) => {
                    tracing::warn!(endpoint = %self.endpoint, "the node ended the stream; reconnecting");
                    self.stream = None;
                }
                Err(status) => {
                    tracing::warn!(endpoint = %self.endpoint, error = %status, "the stream broke; reconnecting");
                    self.stream = None;
                }
            }
        }
    }

    async fn ack(&mut self, _event: &SlaEvent) -> anyhow::Result<()> {
        // A live stream has no position to store.
        Ok(())
    }
}

/// A JSON-lines file of raised events: one proto3-JSON `SlaEvent` per line (what
/// `dunghan replay` prints), or a dead-letter record of this notifier (`{"event": …}`).
#[derive(Debug)]
pub(crate) struct FileSource {
    path: PathBuf,
    lines: std::io::Lines<std::io::BufReader<std::fs::File>>,
    line: usize,
}

impl FileSource {
    pub(crate) fn open(path: PathBuf) -> anyhow::Result<FileSource> {
        let file = std::fs::File::open(&path).map_err(|e| {
            crate::InputError(format!("cannot read events file {}: {e}", path.display()))
        })?;
        Ok(FileSource {
            path,
            lines: std::io::BufReader::new(file).lines(),
            line: 0,
        })
    }
}

impl EventSource for FileSource {
    async fn next(&mut self) -> anyhow::Result<Option<SlaEvent>> {
        for line in self.lines.by_ref() {
            self.line += 1;
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let mut value: serde_json::Value = serde_json::from_str(&line).map_err(|e| {
                anyhow::anyhow!("{} line {}: not JSON: {e}", self.path.display(), self.line)
            })?;
            if let Some(event) = value.get_mut("event") {
                value = event.take();
            }
            let event: SlaEvent = serde_json::from_value(value).map_err(|e| {
                anyhow::anyhow!(
                    "{} line {}: not a dunghan.v1.SlaEvent: {e}",
                    self.path.display(),
                    self.line
                )
            })?;
            return Ok(Some(event));
        }
        Ok(None)
    }

    async fn ack(&mut self, _event: &SlaEvent) -> anyhow::Result<()> {
        Ok(())
    }
}
