//! The peer of `benches/grpc_ingest.sh`: a bare tonic server with the same
//! `IngestService.Publish` as `dunghan serve` (same message limit) that decodes each batch
//! and answers ACCEPTED for every event without doing anything else. What `dunghan serve`
//! adds on top (engine, durable redb commit, metrics) is the difference to it.
//!
//! `bare-ingest [ADDR]` (default 127.0.0.1:0) prints `gRPC listening on ADDR` and serves
//! until killed.

use dunghan_proto::v1::ingest_service_server::{IngestService, IngestServiceServer};
use dunghan_proto::v1::{EventResult, PublishRequest, PublishResponse, PublishStatus};
use tonic::{Request, Response, Status};

/// Same limit as the node's.
const MAX_MESSAGE: usize = 4 << 20;

#[derive(Debug)]
struct Bare;

#[tonic::async_trait]
impl IngestService for Bare {
    async fn publish(
        &self,
        request: Request<PublishRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        let results = request
            .into_inner()
            .events
            .into_iter()
            .map(|e| EventResult {
                event_id: e.event_id,
                status: PublishStatus::Accepted as i32,
                reason: String::new(),
                raised: Vec::new(),
            })
            .collect();
        Ok(Response::new(PublishResponse { results }))
    }
}

/// Accepted connections with `TCP_NODELAY`, as `dunghan serve` takes them.
fn no_delay(
    listener: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        stream.set_nodelay(true)?;
        Ok(stream)
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        println!("gRPC listening on {}", listener.local_addr()?);
        tonic::transport::Server::builder()
            .add_service(
                IngestServiceServer::new(Bare)
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(MAX_MESSAGE),
            )
            .serve_with_incoming(no_delay(listener))
            .await?;
        Ok(())
    })
}
