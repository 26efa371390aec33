//! `IngestService`, `DossierService` and `SlaService` over the embedded node.

use std::sync::{Arc, Mutex};

use dunghan_core::OpenState;
use dunghan_proto::v1::{
    dossier_service_server::DossierService, ingest_service_server::IngestService,
    sla_service_server::SlaService, DossierState, GetRatesRequest, GetRatesResponse,
    GetTimelineRequest, ListOpenDossiersRequest, ListOpenDossiersResponse, OpenDossier,
    PublishRequest, PublishResponse, RateDimension, SlaEvent, Timeline, WatchSlaEventsRequest,
};
use tokio::sync::broadcast::error::RecvError;
use tonic::{Request, Response, Status};

use super::node::Node;
use super::wire::{instant, timestamp};

/// Largest batch one `Publish` takes.
pub(crate) const MAX_BATCH: usize = 1_000;

/// Both services share the node.
#[derive(Debug, Clone)]
pub(crate) struct NodeApi {
    pub(crate) node: Arc<Mutex<Node>>,
}

impl NodeApi {
    async fn with_node<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, Status> {
        super::node::run_on(&self.node, f).await
    }
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
        let results = self.with_node(move |node| node.publish(&events)).await?;
        Ok(Response::new(PublishResponse { results }))
    }
}

#[tonic::async_trait]
impl DossierService for NodeApi {
    async fn get_timeline(
        &self,
        request: Request<GetTimelineRequest>,
    ) -> Result<Response<Timeline>, Status> {
        let dossier_id = request.into_inner().dossier_id;
        if dossier_id.is_empty() {
            return Err(Status::invalid_argument("dossier_id: is required"));
        }
        let id = dossier_id.clone();
        let (events, raised) = self.with_node(move |node| node.timeline(&id)).await?;
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
        let (page, more) = {
            let node = self
                .node
                .lock()
                .map_err(|_| Status::internal("node lock poisoned"))?;
            node.open_dossiers(&r.agency_id, &r.department_id, state, &r.page_token, limit)
        };
        let next_page_token = match (more, page.last()) {
            (true, Some(last)) => last.dossier_id.to_string(),
            _ => String::new(),
        };
        let dossiers = page
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
        let r = request.into_inner();
        let (from, to) = (instant("from", r.from)?, instant("to", r.to)?);
        if to <= from {
            return Err(Status::invalid_argument("to: must be after from"));
        }
        let by = RateDimension::try_from(r.by)
            .map_err(|_| Status::invalid_argument(format!("by: {} is not a dimension", r.by)))?;
        let (rows, total) = self.with_node(move |node| node.rates(from, to, by)).await?;
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
        let mut events = {
            let node = self
                .node
                .lock()
                .map_err(|_| Status::internal("node lock poisoned"))?;
            node.watch()
        };
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            loop {
                let item = match events.recv().await {
                    Ok(e) => {
                        let wanted = (filter.agency_id.is_empty()
                            || e.agency_id == filter.agency_id)
                            && (filter.department_id.is_empty()
                                || e.department_id == filter.department_id);
                        if !wanted {
                            continue;
                        }
                        Ok(e)
                    }
                    Err(RecvError::Lagged(n)) => Err(Status::resource_exhausted(format!(
                        "the watcher fell {n} events behind; reconnect"
                    ))),
                    Err(RecvError::Closed) => break,
                };
                let last = item.is_err();
                if tx.send(item).await.is_err() || last {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}
