//! `dunghan serve`: the embedded node. Its gRPC API (deadlines, ingest, dossier timelines,
//! with health and reflection), its Prometheus endpoint, the durable store, the ticker that
//! fires timers at their moment on the service's clock, and graceful shutdown.

mod calendar_api;
pub(crate) mod cluster;
mod deadline_api;
pub(crate) mod ingest_api;
pub(crate) mod metrics;
pub(crate) mod node;
#[cfg(test)]
mod node_tests;
pub(crate) mod rates;
mod store;
mod ticker;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use dunghan_core::{Catalog, Engine};
use dunghan_proto::v1::calendar_service_server::CalendarServiceServer;
use dunghan_proto::v1::deadline_service_server::DeadlineServiceServer;
use dunghan_proto::v1::dossier_service_server::DossierServiceServer;
use dunghan_proto::v1::ingest_service_server::IngestServiceServer;
use dunghan_proto::v1::sla_service_server::SlaServiceServer;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cli::ServeArgs;
use crate::config::Config;
use crate::files::{load_calendar_spec, load_catalog, CalendarSpec};
use crate::InputError;

/// The example catalog shipped in `deploy/`, so `serve` with no flags already works.
const EXAMPLE_CATALOG: &str = include_str!("../../../deploy/catalog/procedures.toml");
/// Largest request or response message (bytes).
const MAX_MESSAGE: usize = 4 << 20;

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    let env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let config = Config::load(args.config.as_deref(), env).map_err(InputError)?;
    init_logging(
        args.log_format.as_deref().or(config.log.format.as_deref()),
        config.log.level.as_deref(),
    );
    let catalog = match args.catalog.or(config.catalog.file) {
        Some(path) => load_catalog(&path)?,
        None => {
            tracing::info!("no catalog given: using the example catalog from deploy/");
            Catalog::parse(EXAMPLE_CATALOG, "deploy/catalog/procedures.toml")?
        }
    };
    let api_catalog = Arc::new(catalog.clone());
    let spec = match args.calendar.or(config.calendar.file) {
        Some(path) => load_calendar_spec(&path)?,
        None => CalendarSpec::default(),
    };
    let calendars = spec.build()?;
    let shared: node::SharedCalendars =
        Arc::new(std::sync::RwLock::new(Arc::new(calendars.clone())));
    let grpc: SocketAddr = parse_addr(
        "grpc listen",
        args.grpc_listen.or(config.grpc.listen),
        "127.0.0.1:50051",
    )?;
    let metrics_addr: SocketAddr = parse_addr(
        "metrics listen",
        args.metrics_listen.or(config.metrics.listen),
        "127.0.0.1:9464",
    )?;
    if let Some(start) = args
        .clock_start
        .as_deref()
        .or(config.clock.start.as_deref())
    {
        let start_ms = crate::clock::parse_start(start).map_err(InputError)?;
        let offset = crate::clock::start_at(start_ms);
        tracing::warn!(
            start,
            offset_seconds = offset as f64 / 1000.0,
            "SIMULATED CLOCK: the service's clock starts at the configured instant, not the \
             wall clock (benches and drills only)"
        );
    }
    let engine_config = config.engine.clone();
    let metrics = metrics::Metrics::new()?;
    metrics
        .clock_offset
        .set(crate::clock::offset_ms() as f64 / 1000.0);
    let admin_token = config.admin.token.clone().filter(|t| !t.is_empty());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let listen = Listen {
        grpc,
        metrics: metrics_addr,
        admin_token,
    };
    if let Some(brokers) = args.kafka_brokers.or(config.kafka.brokers.clone()) {
        if args.ingest.is_some() {
            return crate::input_error(
                "--ingest is for the embedded node; in Kafka mode produce the events to the \
                 input topic (or call IngestService.Publish)",
            );
        }
        let mut kafka = config.kafka.clone();
        kafka.brokers = Some(brokers);
        let advertise = config.cluster.advertise.clone();
        let peers = config.cluster.peers.0.clone();
        let factory: crate::kafka::EngineFactory = Arc::new(move || {
            Engine::new(catalog.clone(), calendars.clone(), engine_config.clone())
        });
        return crate::kafka::run(
            &runtime,
            kafka,
            factory,
            metrics,
            (advertise, peers),
            (api_catalog, shared),
            listen,
        );
    }
    let data_dir = args
        .data_dir
        .or(config.store.data_dir)
        .unwrap_or_else(|| "data".into());
    let engine = Engine::new(catalog.clone(), calendars.clone(), engine_config);
    let mut node = node::Node::open(&data_dir, engine, metrics.clone(), spec, shared.clone())
        .map_err(|e| InputError(format!("data directory {}: {e}", data_dir.display())))?;
    if let Some(file) = &args.ingest {
        let (accepted, duplicates, rejected) =
            node.ingest(file).map_err(|e| InputError(e.to_string()))?;
        // What the file made due by now fires before serving (as a restart's replay does),
        // so a node stopped right after ingesting has stored it.
        node.catch_up()?;
        println!(
            "ingested {}: {accepted} accepted, {duplicates} duplicates, {rejected} rejected",
            file.display()
        );
    }
    let node = Arc::new(Mutex::new(node));
    let services = Services {
        catalog: api_catalog,
        calendars: shared,
        backend: ingest_api::Backend::Embedded(node.clone()),
        peers: cluster::Peers::default(),
        metrics,
        ready: Arc::new(AtomicBool::new(true)),
    };
    runtime.block_on(async move {
        let serving = serve(services, listen);
        let ticking = tokio::spawn(ticker::run(node.clone()));
        let result = serving.await;
        ticking.abort();
        let _ = ticking.await;
        // What the ticker sent out unwritten is written before the process ends.
        let written = node::run_on(&node, |n| n.write_all_deferred()).await;
        result.and(written.map_err(|e| anyhow::anyhow!("writing raised events at stop: {e}")))
    })
}

/// Where the services listen, and the admin token.
#[derive(Debug)]
pub(crate) struct Listen {
    pub(crate) grpc: SocketAddr,
    pub(crate) metrics: SocketAddr,
    pub(crate) admin_token: Option<String>,
}

/// What the services answer from.
#[derive(Debug)]
pub(crate) struct Services {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) calendars: node::SharedCalendars,
    pub(crate) backend: ingest_api::Backend,
    pub(crate) peers: cluster::Peers,
    pub(crate) metrics: metrics::Metrics,
    /// Readiness (`/readyz`).
    pub(crate) ready: Arc<AtomicBool>,
}

fn parse_addr(what: &str, given: Option<String>, default: &str) -> anyhow::Result<SocketAddr> {
    let text = given.unwrap_or_else(|| default.to_owned());
    text.parse()
        .map_err(|_| InputError(format!("{what} `{text}` is not an address like {default}")).into())
}

/// Logs to stderr as text or JSON at `level` (`RUST_LOG` wins when set).
pub(crate) fn init_logging(format: Option<&str>, level: Option<&str>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level.unwrap_or("info")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if format == Some("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Serves gRPC and HTTP until SIGTERM or Ctrl-C, then drains and returns.
pub(crate) async fn serve(services: Services, listen: Listen) -> anyhow::Result<()> {
    let Services {
        catalog,
        calendars,
        backend,
        peers,
        metrics,
        ready,
    } = services;
    let embedded = match &backend {
        ingest_api::Backend::Embedded(node) => Some(node.clone()),
        ingest_api::Backend::Kafka(_) => None,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let node = ingest_api::NodeApi {
        backend,
        peers,
        stop: stop_rx.clone(),
    };
    let calendar_api = calendar_api::CalendarApi {
        calendars: calendars.clone(),
        node: embedded,
        admin_token: listen.admin_token,
    };
    let api = deadline_api::DeadlineApi {
        catalog,
        calendars,
        metrics: metrics.clone(),
    };
    let (grpc_addr, metrics_addr) = (listen.grpc, listen.metrics);
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<DeadlineServiceServer<deadline_api::DeadlineApi>>()
        .await;
    health_reporter
        .set_serving::<IngestServiceServer<ingest_api::NodeApi>>()
        .await;
    health_reporter
        .set_serving::<DossierServiceServer<ingest_api::NodeApi>>()
        .await;
    health_reporter
        .set_serving::<SlaServiceServer<ingest_api::NodeApi>>()
        .await;
    health_reporter
        .set_serving::<CalendarServiceServer<calendar_api::CalendarApi>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(dunghan_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    let grpc_listener = TcpListener::bind(grpc_addr)
        .await
        .map_err(|e| InputError(format!("cannot listen for gRPC on {grpc_addr}: {e}")))?;
    let metrics_listener = TcpListener::bind(metrics_addr)
        .await
        .map_err(|e| InputError(format!("cannot listen for metrics on {metrics_addr}: {e}")))?;
    // One line per listener on stdout, with the real port (when 0 was asked for).
    println!("gRPC listening on {}", grpc_listener.local_addr()?);
    println!(
        "metrics on http://{}/metrics",
        metrics_listener.local_addr()?
    );

    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stopping: no new connections, finishing requests in flight");
        let _ = stop_tx.send(true);
        wait_for_signal().await;
        tracing::warn!("second signal: exiting at once");
        std::process::exit(130);
    });
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let grpc = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(reflection)
        .add_service(
            DeadlineServiceServer::new(api)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            IngestServiceServer::new(node.clone())
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(SlaServiceServer::new(node.clone()))
        .add_service(CalendarServiceServer::new(calendar_api))
        .add_service(
            DossierServiceServer::new(node)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .serve_with_incoming_shutdown(no_delay(grpc_listener), stopped(stop_rx.clone()));
    let http = axum::serve(metrics_listener, metrics::router(metrics, ready))
        .with_graceful_shutdown(stopped(stop_rx));
    let (grpc, http) = tokio::join!(grpc, http);
    grpc?;
    http?;
    tracing::info!("stopped");
    Ok(())
}

/// Accepted gRPC connections with `TCP_NODELAY`: without it, a reply that does not fill
/// a segment waits for the client's delayed ACK (about 40 ms on Linux), which capped a
/// client publishing 1 000-event batches one at a time at ~22 batches/s.
pub(crate) fn no_delay(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        stream.set_nodelay(true)?;
        Ok(stream)
    })
}

/// SIGTERM or Ctrl-C.
pub(crate) async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
