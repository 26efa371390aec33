//! Prometheus metrics of the node: names, a private registry, and the `/metrics` and
//! `/healthz` HTTP endpoints. Labels are bounded (outcomes, versions), never dossier ids.

use prometheus::{Encoder, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

/// `ComputeDeadline` calls by result: ok, invalid_argument, not_found.
pub(crate) const DEADLINE_REQUESTS: &str = "dunghan_deadline_requests_total";
/// 1, labelled with the version.
pub(crate) const BUILD_INFO: &str = "dunghan_build_info";

/// The node's metrics.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) deadline_requests: IntCounterVec,
}

impl Metrics {
    pub(crate) fn new() -> anyhow::Result<Metrics> {
        let registry = Registry::new();
        let deadline_requests = IntCounterVec::new(
            Opts::new(DEADLINE_REQUESTS, "ComputeDeadline calls by result."),
            &["result"],
        )?;
        let build_info = IntGauge::with_opts(
            Opts::new(BUILD_INFO, "Always 1; the version is a label.")
                .const_label("version", env!("CARGO_PKG_VERSION")),
        )?;
        build_info.set(1);
        registry.register(Box::new(deadline_requests.clone()))?;
        registry.register(Box::new(build_info))?;
        for result in ["ok", "invalid_argument", "not_found"] {
            deadline_requests.with_label_values(&[result]);
        }
        Ok(Metrics {
            registry,
            deadline_requests,
        })
    }

    /// The registry in the Prometheus text format.
    pub(crate) fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The HTTP router: `/metrics` (text format 0.0.4) and `/healthz`.
pub(crate) fn router(metrics: Metrics) -> axum::Router {
    use axum::http::header::CONTENT_TYPE;
    use axum::routing::get;
    axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let body = metrics.render();
                async move { ([(CONTENT_TYPE, "text/plain; version=0.0.4")], body) }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
}
