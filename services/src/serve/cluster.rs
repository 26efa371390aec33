//! The other instances of a Kafka-mode cluster, for queries: a dossier query that this
//! instance cannot answer goes to the peers (the one owning the dossier's partition
//! answers), list and rate queries fan out and merge. A forwarded request carries a
//! header so that it is answered locally and never forwarded again.

use std::time::Duration;

use dunghan_proto::v1::dossier_service_client::DossierServiceClient;
use dunghan_proto::v1::sla_service_client::SlaServiceClient;
use dunghan_proto::v1::{
    GetRatesRequest, GetRatesResponse, GetTimelineRequest, ListOpenDossiersRequest,
    ListOpenDossiersResponse, Timeline,
};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request};

/// Metadata key marking a request forwarded by a peer.
pub(crate) const FORWARDED: &str = "x-dunghan-forwarded";
/// How long a peer may take to answer.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// The peers' gRPC channels (connected lazily; an unreachable peer is skipped, logged).
#[derive(Debug, Clone, Default)]
pub(crate) struct Peers {
    peers: Vec<(String, Channel)>,
}

/// Whether a request came from a peer (answer it locally only).
pub(crate) fn forwarded<T>(request: &Request<T>) -> bool {
    request.metadata().contains_key(FORWARDED)
}

fn forward<T>(message: T) -> Request<T> {
    let mut r = Request::new(message);
    r.metadata_mut()
        .insert(FORWARDED, tonic::metadata::MetadataValue::from_static("1"));
    r.set_timeout(PEER_TIMEOUT);
    r
}

impl Peers {
    /// Channels to `addresses` (`host:port`), leaving out this instance's own address.
    pub(crate) fn new(addresses: &[String], own: &str) -> anyhow::Result<Peers> {
        let mut peers = Vec::new();
        for a in addresses.iter().filter(|a| a.as_str() != own) {
            let uri = if a.contains("://") {
                a.clone()
            } else {
                format!("http://{a}")
            };
            let endpoint = Endpoint::from_shared(uri)
                .map_err(|e| anyhow::anyhow!("[cluster] peers: `{a}` is not an address: {e}"))?
                .connect_timeout(Duration::from_secs(3))
                .timeout(PEER_TIMEOUT);
            peers.push((a.clone(), endpoint.connect_lazy()));
        }
        Ok(Peers { peers })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// The first peer's timeline of the dossier (`None` when no peer has it).
    pub(crate) async fn timeline(&self, dossier_id: &str) -> Option<Timeline> {
        for (address, channel) in &self.peers {
            let request = forward(GetTimelineRequest {
                dossier_id: dossier_id.to_owned(),
            });
            match DossierServiceClient::new(channel.clone())
                .get_timeline(request)
                .await
            {
                Ok(t) => return Some(t.into_inner()),
                Err(s) if s.code() == Code::NotFound => {}
                Err(s) => tracing::warn!(peer = %address, error = %s, "peer timeline"),
            }
        }
        None
    }

    /// Every reachable peer's page of open dossiers.
    pub(crate) async fn open_dossiers(
        &self,
        request: &ListOpenDossiersRequest,
    ) -> Vec<ListOpenDossiersResponse> {
        let mut pages = Vec::new();
        for (address, channel) in &self.peers {
            match DossierServiceClient::new(channel.clone())
                .list_open_dossiers(forward(request.clone()))
                .await
            {
                Ok(page) => pages.push(page.into_inner()),
                Err(s) => tracing::warn!(peer = %address, error = %s, "peer list"),
            }
        }
        pages
    }

    /// Every reachable peer's rates.
    pub(crate) async fn rates(&self, request: &GetRatesRequest) -> Vec<GetRatesResponse> {
        let mut all = Vec::new();
        for (address, channel) in &self.peers {
            match SlaServiceClient::new(channel.clone())
                .get_rates(forward(*request))
                .await
            {
                Ok(r) => all.push(r.into_inner()),
                Err(s) => tracing::warn!(peer = %address, error = %s, "peer rates"),
            }
        }
        all
    }
}
