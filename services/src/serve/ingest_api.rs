//! `IngestService` and `DossierService` over the embedded node.

use std::sync::{Arc, Mutex};

use dunghan_proto::v1::{
    dossier_service_server::DossierService, ingest_service_server::IngestService,
    GetTimelineRequest, PublishRequest, PublishResponse, Timeline,
};
use tonic::{Request, Response, Status};

use super::node::Node;

/// Largest batch one `Publish` takes.
pub(crate) const MAX_BATCH: usize = 1_000;

/// Both services share the node.
#[derive(Debug, Clone)]
pub(crate) struct NodeApi {
    pub(crate) node: Arc<Mutex<Node>>,
}

fn internal(e: anyhow::Error) -> Status {
    tracing::error!(error = %e, "store failure");
    Status::internal(format!("store: {e}"))
}

impl NodeApi {
    /// Runs `f` on the node off the async threads (store commits wait for the disk).
    async fn with_node<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, Status> {
        let node = self.node.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = node
                .lock()
                .map_err(|_| anyhow::anyhow!("node lock poisoned"))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(internal)
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
}
