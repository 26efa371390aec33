//! `IngestService`, `DossierService` and `SlaService` over the embedded node or a
//! Kafka-mode instance (which also asks its peers: see `cluster`).

use std::sync::{Arc, Mutex};

use dunghan_core::OpenState;
use dunghan_proto::v1::{
    dossier_service_server::DossierService, ingest_service_server::IngestService,
    sla_service_server::SlaService, DossierState, GetRatesRequest, GetRatesResponse,
    GetTimelineRequest, ListOpenDossiersRequest, ListOpenDossiersResponse, OpenDossier,
    PublishRequest, PublishResponse, RateDimension, SlaEvent, Timeline, WatchSlaEventsRequest,
};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::{BroadcastStream, WatchStream};
use tokio_stream::StreamExt as _;
use tonic::{Request, Response, Status};

use super::cluster::{forwarded, Peers};
use super::node::Node;
use super::wire::{instant, timestamp};
use crate::kafka::KafkaNode;

/// Largest batch one `Publish` takes.
pub(crate) const MAX_BATCH: usize = 1_000;

/// Where the services' answers come from.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    /// The embedded node (engine + durable store).
    Embedded(Arc<Mutex<Node>>),
    /// A Kafka-mode instance: the partitions it owns.
    Kafka(Arc<KafkaNode>),
}

/// The three services share the backend.
#[derive(Debug, Clone)]
pub(crate) struct NodeApi {
    pub(crate) backend: Backend,
    /// Other instances (Kafka mode), asked when this one does not hold the answer.
    pub(crate) peers: Peers,
    /// Becomes true at SIGTERM: watch streams end then, so the graceful shutdown (which
    /// waits for requests in flight) is not held open by a connected watcher.
    pub(crate) stop: tokio::sync::watch::Receiver<bool>,
}

/// Runs blocking work on the Kafka node off the async threads.
async fn on_kafka<T: Send + 'static>(
    node: &Arc<KafkaNode>,
    f: impl FnOnce(&KafkaNode) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Status> {
    let node = node.clone();
    tokio::task::spawn_blocking(move || f(&node))
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|e| {
            tracing::error!(error = %e, "query failure");
            Status::internal(format!("node: {e}"))
        })
}

#[tonic::async_trait]
impl IngestService for NodeApi {
    async fn publish(
        &self,
        request: Request<PublishRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        let events = request.into_inner().events;
        if events.len() > MAX_BATCH {
            return Err(Status::invalid_argument(format!(
                "events: a batch of {} is over the limit of {MAX_BATCH}",
                events.len()
            )));
        }
        let results = match &self.backend {
            // A full data directory answers RESOURCE_EXHAUSTED (run_on): nothing of the
            // batch was acknowledged, send it again once there is space.
            Backend::Embedded(node) => {
                super::node::run_on(node, move |node| node.publish(&events)).await?
            }
            Backend::Kafka(node) => node.publish(events).await,
        };
        Ok(Response::new(PublishResponse { results }))
    }
}

#[tonic::async_trait]
impl DossierService for NodeApi {
    async fn get_timeline(
        &self,
        request: Request<GetTimelineRequest>,
    ) -> Result<Response<Timeline>, Status> {
        let local_only = forwarded(&request);
        let dossier_id = request.into_inner().dossier_id;
        if dossier_id.is_empty() {
            return Err(Status::invalid_argument("dossier_id: is required"));
        }
        let id = dossier_id.clone();
        let (events, raised) = match &self.backend {
            Backend::Embedded(node) => super::node::run_on(node, move |n| n.timeline(&id)).await?,
            Backend::Kafka(node) => on_kafka(node, move |n| n.timeline(&id)).await?,
        };
        if events.is_empty() && !local_only {
            if let Some(timeline) = self.peers.timeline(&dossier_id).await {
                return Ok(Response::new(timeline));
            }
        }
        if events.is_empty() {
            return Err(Status::not_found(format!(
                "dossier_id: no dossier `{dossier_id}`"
            )));
        }
        Ok(Response::new(Timeline {
            dossier_id,
            events,
            raised,
        }))
    }

    async fn list_open_dossiers(
        &self,
        request: Request<ListOpenDossiersRequest>,
    ) -> Result<Response<ListOpenDossiersResponse>, Status> {
        let local_only = forwarded(&request);
        let r = request.into_inner();
        let state = match DossierState::try_from(r.state) {
            Ok(DossierState::Unspecified) => None,
            Ok(DossierState::InTime) => Some(OpenState::InTime),
            Ok(DossierState::DueSoon) => Some(OpenState::DueSoon),
            Ok(DossierState::Overdue) => Some(OpenState::Overdue),
            Ok(DossierState::Paused) => Some(OpenState::Paused),
            Ok(DossierState::ResultReady) => Some(OpenState::ResultReady),
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "state: {} is not a state",
                    r.state
                )))
            }
        };
        let limit = match r.page_size {
            0 => 100,
            n if n <= 1_000 => n as usize,
            n => {
                return Err(Status::invalid_argument(format!(
                    "page_size: {n} is over 1000"
                )))
            }
        };
        let filter = super::node::OpenFilter {
            agency: &r.agency_id,
            department: &r.department_id,
            state,
            after: &r.page_token,
            limit,
        };
        let (page, more) = match &self.backend {
            Backend::Embedded(node) => node
                .lock()
                .map_err(|_| Status::internal("node lock poisoned"))?
                .open_dossiers(&filter),
            Backend::Kafka(node) => node.open_dossiers(&filter),
        };
        let mut dossiers: Vec<OpenDossier> = page
            .into_iter()
            .map(|d| OpenDossier {
                dossier_id: d.dossier_id.to_string(),
                agency_id: d.agency_id.to_string(),
                department_id: d.department_id.to_string(),
                deadline: timestamp(d.deadline),
                state: match d.state {
                    OpenState::InTime => DossierState::InTime,
                    OpenState::DueSoon => DossierState::DueSoon,
                    OpenState::Overdue => DossierState::Overdue,
                    OpenState::Paused => DossierState::Paused,
                    OpenState::ResultReady => DossierState::ResultReady,
                } as i32,
            })
            .collect();
        let mut more = more;
        if !local_only && !self.peers.is_empty() {
            // Each peer's first page after the token; the merged first `limit` are exact.
            for peer in self.peers.open_dossiers(&r).await {
                more |= !peer.next_page_token.is_empty();
                dossiers.extend(peer.dossiers);
            }
            dossiers.sort_by(|a, b| a.dossier_id.cmp(&b.dossier_id));
            more |= dossiers.len() > limit;
            dossiers.truncate(limit);
        }
        let next_page_token = match (more, dossiers.last()) {
            (true, Some(last)) => last.dossier_id.clone(),
            _ => String::new(),
        };
        Ok(Response::new(ListOpenDossiersResponse {
            dossiers,
            next_page_token,
        }))
    }
}

/// The stream `WatchSlaEvents` returns.
type SlaEventStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<SlaEvent, Status>> + Send>>;

#[tonic::async_trait]
impl SlaService for NodeApi {
    type WatchSlaEventsStream = SlaEventStream;

    async fn get_rates(
        &self,
        request: Request<GetRatesRequest>,
    ) -> Result<Response<GetRatesResponse>, Status> {
        let local_only = forwarded(&request);
        let r = request.into_inner();
        let (from, to) = (instant("from", r.from)?, instant("to", r.to)?);
        if to <= from {
            return Err(Status::invalid_argument("to: must be after from"));
        }
        let by = RateDimension::try_from(r.by)
            .map_err(|_| Status::invalid_argument(format!("by: {} is not a dimension", r.by)))?;
        let mut local = match &self.backend {
            Backend::Embedded(node) => {
                super::node::run_on(node, move |n| n.rates(from, to, by)).await?
            }
            Backend::Kafka(node) => on_kafka(node, move |n| n.rates(from, to, by)).await?,
        };
        if !local_only && !self.peers.is_empty() {
            let mut parts = vec![local];
            for peer in self.peers.rates(&r).await {
                parts.push((peer.rows, peer.total.unwrap_or_default()));
            }
            local = super::rates::merge(parts);
        }
        let (rows, total) = local;
        Ok(Response::new(GetRatesResponse {
            rows,
            total: Some(total),
        }))
    }

    async fn watch_sla_events(
        &self,
        request: Request<WatchSlaEventsRequest>,
    ) -> Result<Response<Self::WatchSlaEventsStream>, Status> {
        let filter = request.into_inner();
        let events = match &self.backend {
            Backend::Embedded(node) => node
                .lock()
                .map_err(|_| Status::internal("node lock poisoned"))?
                .watch(),
            Backend::Kafka(node) => node.shared.watchers.subscribe(),
        };
        // The broadcast receiver is the stream itself (no task and channel in between).
        let mut ended = false;
        // Each item is a slice of raised events; the watcher gets them one by one.
        let slices = BroadcastStream::new(events);
        let stream = futures_util::StreamExt::flat_map(slices, move |item| {
            let filter = filter.clone();
            // Cloned one at a time as the stream sends them (no copy of a whole slice).
            let events: Box<dyn Iterator<Item = Result<SlaEvent, Status>> + Send> = match item {
                Ok(slice) => Box::new((0..slice.len()).filter_map(move |i| {
                    let e = &slice[i];
                    let wanted = (filter.agency_id.is_empty() || e.agency_id == filter.agency_id)
                        && (filter.department_id.is_empty()
                            || e.department_id == filter.department_id);
                    wanted.then(|| Ok(e.clone()))
                })),
                Err(BroadcastStreamRecvError::Lagged(n)) => {
                    Box::new(std::iter::once(Err(Status::resource_exhausted(format!(
                        "the watcher fell {n} batches of raised events behind; reconnect"
                    )))))
                }
            };
            tokio_stream::iter(events)
        })
        // A watcher that fell behind gets the error, then the end of the stream.
        .take_while(move |item| !std::mem::replace(&mut ended, item.is_err()));
        let stopping = WatchStream::new(self.stop.clone())
            .filter(|stop| *stop)
            .map(|_| None);
        let stream = stream
            .map(Some)
            .merge(stopping)
            .take_while(Option::is_some)
            .filter_map(|item| item);
        Ok(Response::new(Box::pin(stream)))
    }
}
