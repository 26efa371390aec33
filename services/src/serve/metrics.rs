//! Prometheus metrics of the node: names, a private registry (and the per-event counter
//! vectors beside it, `family.rs`), and the `/metrics` and `/healthz` HTTP endpoints.
//! Labels are bounded (outcomes, versions), never dossier ids.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use dunghan_proto::v1::dossier_event::Payload;
use dunghan_proto::v1::{
    Channel, DossierEvent, Outcome, PublishStatus, SatisfactionLevel, SlaEventKind,
};
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// `ComputeDeadline` calls by result: ok, invalid_argument, not_found.
pub(crate) const DEADLINE_REQUESTS: &str = "dunghan_deadline_requests_total";
/// 1, labelled with the version.
pub(crate) const BUILD_INFO: &str = "dunghan_build_info";
/// Published events by status (accepted, duplicate, rejected) and reject reason.
pub(crate) const EVENTS: &str = "dunghan_events_total";
/// Dossiers received, by agency, procedure field and channel.
pub(crate) const RECEIVED: &str = "dunghan_dossiers_received_total";
/// Dossiers finished or ended, by agency, field, channel and outcome
/// (early, on_time, late; ended for withdrawn, refused or stopped).
pub(crate) const FINISHED: &str = "dunghan_dossiers_finished_total";
/// Raised events by kind and level.
pub(crate) const RAISED: &str = "dunghan_raised_events_total";
/// Apologies by department and state (required, overdue).
pub(crate) const APOLOGIES: &str = "dunghan_apologies_total";
/// Dossiers open (received, not yet returned or ended).
pub(crate) const OPEN: &str = "dunghan_open_dossiers";
/// Open dossiers by state (in_time, due_soon, overdue, paused, result_ready), refreshed
/// every 15 s (a pass over the open dossiers, kept off the moments timers are due).
pub(crate) const OPEN_BY_STATE: &str = "dunghan_open_dossiers_by_state";
/// Dossiers with a pending timer.
pub(crate) const PENDING_TIMERS: &str = "dunghan_pending_timers";
/// Citizen ratings by level.
pub(crate) const RATINGS: &str = "dunghan_satisfaction_ratings_total";
/// Processing time of finished dossiers as a share of the time allowed (receipt to result
/// over receipt to deadline; above 1 is late).
pub(crate) const TIME_RATIO: &str = "dunghan_processing_time_ratio";
/// How late the last clock tick found the earliest due timer, in seconds.
pub(crate) const TIMER_LAG: &str = "dunghan_timer_lag_seconds";
/// Per timer-raised event, wall clock when it was stored minus its rule's moment (seconds,
/// ms precision): how late rules fire. No labels.
pub(crate) const TIMER_FIRE_LAG: &str = "dunghan_timer_fire_lag_seconds";
/// Dossiers whose timers were fired ahead of a crowded moment, by state: `prepared`, and
/// `withdrawn` (an event for the dossier came before the moment and undid the firing).
pub(crate) const PREPARED: &str = "dunghan_timer_prepared_dossiers_total";
/// The service's clock minus the system clock (seconds): 0 unless `[clock] start` set a
/// simulated clock (benches, drills).
pub(crate) const CLOCK_OFFSET: &str = "dunghan_clock_offset_seconds";
/// Dossiers finished or ended, by agency, procedure code and outcome (the on-time rate per
/// procedure; the procedure's field is in [`FINISHED`]).
pub(crate) const FINISHED_BY_PROCEDURE: &str = "dunghan_dossiers_finished_by_procedure_total";
/// Steps handed to a department (accepted StepStarted), by department.
pub(crate) const STEPS_STARTED: &str = "dunghan_steps_started_total";
/// Steps that overran their allotted time (the level 1 escalation), by department: with
/// [`STEPS_STARTED`] the department's on-time rate, since a step's department is the one
/// at fault when it overruns.
pub(crate) const STEPS_OVERDUE: &str = "dunghan_steps_overdue_total";

mod counted;
mod family;
mod tally;
pub(crate) use counted::Counted;
use family::CounterFamily;
pub(crate) use tally::Tally;

/// Outcome label values of [`FINISHED`] and [`FINISHED_BY_PROCEDURE`].
const OUTCOMES: [&str; 4] = ["early", "on_time", "late", "ended"];

/// The node's metrics.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) deadline_requests: IntCounterVec,
    pub(crate) events: CounterFamily,
    received: CounterFamily,
    finished: CounterFamily,
    raised: CounterFamily,
    apologies: CounterFamily,
    pub(crate) open: IntGauge,
    pub(crate) open_by_state: prometheus::IntGaugeVec,
    pub(crate) pending_timers: IntGauge,
    pub(crate) ratings: CounterFamily,
    pub(crate) time_ratio: Histogram,
    pub(crate) timer_lag: Gauge,
    pub(crate) fire_lag: Histogram,
    pub(crate) prepared: IntCounterVec,
    pub(crate) clock_offset: Gauge,
    finished_by_procedure: CounterFamily,
    steps_started: CounterFamily,
    steps_overdue: CounterFamily,
    /// Outcome series already created at zero.
    cache: Arc<Mutex<Cache>>,
    /// Label values of `SlaEventKind`s, `Channel`s and `SatisfactionLevel`s, made once.
    kind_labels: Arc<[String]>,
    channel_labels: Arc<[String]>,
    rating_labels: Arc<[String]>,
}

/// What the shared path remembers across threads.
#[derive(Debug, Default)]
struct Cache {
    /// (agency, field, channel, procedure) whose outcome series exist.
    precreated: HashSet<String>,
}

/// The counter vectors the per-event path adds to, as a [`Sink`] names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Series {
    Events,
    Received,
    Finished,
    FinishedByProcedure,
    Raised,
    StepsStarted,
    StepsOverdue,
    Apologies,
    Ratings,
}

impl Series {
    const ALL: [Series; 9] = [
        Series::Events,
        Series::Received,
        Series::Finished,
        Series::FinishedByProcedure,
        Series::Raised,
        Series::StepsStarted,
        Series::StepsOverdue,
        Series::Apologies,
        Series::Ratings,
    ];
}

/// Where the per-event path counts: straight into the shared counters ([`Direct`]), or
/// into a thread's [`Tally`] that adds to them now and then.
pub(crate) trait Sink {
    /// Adds 1 to `series` at `labels`.
    fn inc(&mut self, metrics: &Metrics, series: Series, labels: &[&str]);
    /// Whether the series made at zero under `key` may not exist yet: always, for the
    /// shared counters; the first time this thread sees `key`, for a tally.
    fn first_sight(&mut self, key: &[&str]) -> bool;
}

/// Counting straight into the shared counters (embedded mode: one lock-free increment
/// after a label lookup per count).
pub(crate) struct Direct;

impl Sink for Direct {
    fn inc(&mut self, metrics: &Metrics, series: Series, labels: &[&str]) {
        metrics.series(series).inc(labels);
    }

    fn first_sight(&mut self, _: &[&str]) -> bool {
        true
    }
}

/// The label values of a protobuf enum, by number: its names (`name(n)`, values 0, 1, …
/// up to the first number that is none) without `prefix`, in lower case.
fn enum_labels(prefix: &str, name: impl Fn(i32) -> Option<&'static str>) -> Arc<[String]> {
    (0..=i32::from(u8::MAX))
        .map_while(name)
        .map(|n| n.trim_start_matches(prefix).to_ascii_lowercase())
        .collect()
}

/// Label values joined by U+001F (never in a label value), as one key.
fn join(parts: &[&str]) -> String {
    let mut key = String::new();
    join_into(&mut key, parts);
    key
}

/// [`join`] into `out`, emptied first.
fn join_into(out: &mut String, parts: &[&str]) {
    out.clear();
    out.reserve(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('\u{1f}');
        }
        out.push_str(part);
    }
}

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> anyhow::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge(registry: &Registry, name: &str, help: &str) -> anyhow::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

impl Metrics {
    pub(crate) fn new() -> anyhow::Result<Metrics> {
        let registry = Registry::new();
        let deadline_requests = counter(
            &registry,
            DEADLINE_REQUESTS,
            "ComputeDeadline calls by result.",
            &["result"],
        )?;
        let events = CounterFamily::new(
            EVENTS,
            "Published events by status and reject reason.",
            &["status", "reason"],
        )?;
        let received = CounterFamily::new(
            RECEIVED,
            "Dossiers received.",
            &["agency", "field", "channel"],
        )?;
        let finished = CounterFamily::new(
            FINISHED,
            "Dossiers finished (by outcome) or ended.",
            &["agency", "field", "channel", "outcome"],
        )?;
        let raised = CounterFamily::new(
            RAISED,
            "Raised SLA events by kind and level.",
            &["kind", "level"],
        )?;
        let apologies = CounterFamily::new(
            APOLOGIES,
            "Apologies required and overdue by department.",
            &["department", "state"],
        )?;
        let open = gauge(
            &registry,
            OPEN,
            "Dossiers received and not yet returned or ended.",
        )?;
        let pending_timers = gauge(&registry, PENDING_TIMERS, "Dossiers with a pending timer.")?;
        let open_by_state = prometheus::IntGaugeVec::new(
            Opts::new(OPEN_BY_STATE, "Open dossiers by state."),
            &["state"],
        )?;
        registry.register(Box::new(open_by_state.clone()))?;
        let ratings = CounterFamily::new(RATINGS, "Citizen ratings by level.", &["level"])?;
        let time_ratio = Histogram::with_opts(
            HistogramOpts::new(
                TIME_RATIO,
                "Processing time over the time allowed, per finished dossier.",
            )
            .buckets(vec![0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.5, 2.0, 4.0]),
        )?;
        registry.register(Box::new(time_ratio.clone()))?;
        let timer_lag = Gauge::new(
            TIMER_LAG,
            "How late the last tick found the earliest due timer.",
        )?;
        registry.register(Box::new(timer_lag.clone()))?;
        let fire_lag = Histogram::with_opts(
            HistogramOpts::new(
                TIMER_FIRE_LAG,
                "Per timer-raised event: sent to watchers (or stored, when looked up first) \
                 at minus the rule's moment.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                60.0, 300.0,
            ]),
        )?;
        registry.register(Box::new(fire_lag.clone()))?;
        let prepared = counter(
            &registry,
            PREPARED,
            "Dossiers fired ahead of a crowded moment (prepared), and those an event undid \
             before the moment (withdrawn).",
            &["state"],
        )?;
        for state in ["prepared", "withdrawn"] {
            prepared.with_label_values(&[state]);
        }
        let clock_offset = Gauge::new(
            CLOCK_OFFSET,
            "The service's clock minus the system clock (0 unless simulated).",
        )?;
        registry.register(Box::new(clock_offset.clone()))?;
        let build_info = IntGauge::with_opts(
            Opts::new(BUILD_INFO, "Always 1; the version is a label.")
                .const_label("version", env!("CARGO_PKG_VERSION")),
        )?;
        build_info.set(1);
        registry.register(Box::new(build_info))?;
        for result in ["ok", "invalid_argument", "not_found"] {
            deadline_requests.with_label_values(&[result]);
        }
        let finished_by_procedure = CounterFamily::new(
            FINISHED_BY_PROCEDURE,
            "Dossiers finished (by outcome) or ended, by procedure.",
            &["agency", "procedure", "outcome"],
        )?;
        let steps_started = CounterFamily::new(
            STEPS_STARTED,
            "Steps handed to a department.",
            &["department"],
        )?;
        let steps_overdue = CounterFamily::new(
            STEPS_OVERDUE,
            "Steps that overran their allotted time, by department.",
            &["department"],
        )?;
        let rating_labels = enum_labels("SATISFACTION_LEVEL_", |n| {
            SatisfactionLevel::try_from(n).ok().map(|l| l.as_str_name())
        });
        // Every level from the start (not `unspecified`), so a rate over the ratings sees
        // the first one too.
        for level in rating_labels.iter().skip(1) {
            ratings.with_label_values(&[level.as_str()]);
        }
        Ok(Metrics {
            registry,
            deadline_requests,
            events,
            received,
            finished,
            raised,
            apologies,
            open,
            open_by_state,
            pending_timers,
            ratings,
            time_ratio,
            timer_lag,
            fire_lag,
            prepared,
            clock_offset,
            finished_by_procedure,
            steps_started,
            steps_overdue,
            cache: Arc::default(),
            kind_labels: enum_labels("SLA_EVENT_KIND_", |n| {
                SlaEventKind::try_from(n).ok().map(|k| k.as_str_name())
            }),
            channel_labels: enum_labels("CHANNEL_", |n| {
                Channel::try_from(n).ok().map(|c| c.as_str_name())
            }),
            rating_labels,
        })
    }

    /// The counter vector of `series`.
    fn series(&self, series: Series) -> &CounterFamily {
        match series {
            Series::Events => &self.events,
            Series::Received => &self.received,
            Series::Finished => &self.finished,
            Series::FinishedByProcedure => &self.finished_by_procedure,
            Series::Raised => &self.raised,
            Series::StepsStarted => &self.steps_started,
            Series::StepsOverdue => &self.steps_overdue,
            Series::Apologies => &self.apologies,
            Series::Ratings => &self.ratings,
        }
    }

    /// Counts raised events that were stored for the first time (a restart's replay finds
    /// its events already stored, so nothing is counted twice).
    pub(crate) fn observe(&self, fresh: &[impl Counted]) {
        self.observe_into(&mut Direct, fresh);
    }

    /// [`Metrics::observe`], counted into `sink`. Series that must exist at zero before
    /// their first increase (a counter born at 1 is an increase `increase()` never sees)
    /// are created here, in the shared registry, whatever the sink.
    pub(crate) fn observe_into(&self, sink: &mut impl Sink, fresh: &[impl Counted]) {
        for r in fresh {
            let kind = r.kind();
            let mut level = itoa::Buffer::new();
            let kind_label = self
                .kind_labels
                .get(kind as usize)
                .map_or("", String::as_str);
            sink.inc(self, Series::Raised, &[kind_label, level.format(r.level())]);
            let channel = self.channel_labels.get(r.channel() as usize);
            let channel = channel.map_or("", String::as_str);
            match kind {
                SlaEventKind::DeadlineComputed => {
                    let [a, f, c] = [r.agency_id(), r.field(), channel];
                    sink.inc(self, Series::Received, &[a, f, c]);
                    // Every outcome series exists at zero from the receipt on, or the
                    // on-time rate rules would miss the dossier.
                    let p = r.procedure_code();
                    if sink.first_sight(&[a, f, c, p]) {
                        // Created under the lock (once per key): a thread that finds the
                        // key finds the series too.
                        let mut held = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                        if held.precreated.insert(join(&[a, f, c, p])) {
                            for outcome in OUTCOMES {
                                self.finished.with_label_values(&[a, f, c, outcome]);
                                self.finished_by_procedure
                                    .with_label_values(&[a, p, outcome]);
                            }
                        }
                    }
                }
                SlaEventKind::Outcome => {
                    let outcome = match r.outcome() {
                        Outcome::Early => OUTCOMES[0],
                        Outcome::OnTime => OUTCOMES[1],
                        Outcome::Late => OUTCOMES[2],
                        Outcome::Unspecified => OUTCOMES[3],
                    };
                    let [a, f, c] = [r.agency_id(), r.field(), channel];
                    sink.inc(self, Series::Finished, &[a, f, c, outcome]);
                    let p = r.procedure_code();
                    sink.inc(self, Series::FinishedByProcedure, &[a, p, outcome]);
                }
                SlaEventKind::Escalation if r.level() == 1 && !r.step_id().is_empty() => {
                    sink.inc(self, Series::StepsOverdue, &[r.department_id()]);
                }
                SlaEventKind::ApologyRequired => {
                    let department = r.department_id();
                    sink.inc(self, Series::Apologies, &[department, "required"]);
                    // Zero until one is overdue, so the first overdue one is an increase.
                    if sink.first_sight(&[department, "overdue"]) {
                        self.apologies.with_label_values(&[department, "overdue"]);
                    }
                }
                SlaEventKind::ApologyOverdue => {
                    let department = r.department_id();
                    sink.inc(self, Series::Apologies, &[department, "overdue"]);
                }
                _ => {}
            }
        }
    }

    /// The registry, for metrics defined elsewhere (the Kafka runtime's).
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Counts one input event by status (`reason`: the reject reason code, or empty), and
    /// for an accepted rating or apology, the rating or issued apology.
    pub(crate) fn count_event(
        &self,
        status: PublishStatus,
        reason: &str,
        accepted: Option<&DossierEvent>,
    ) {
        self.count_event_into(&mut Direct, status, reason, accepted);
    }

    /// [`Metrics::count_event`], counted into `sink`.
    pub(crate) fn count_event_into(
        &self,
        sink: &mut impl Sink,
        status: PublishStatus,
        reason: &str,
        accepted: Option<&DossierEvent>,
    ) {
        let label = match status {
            PublishStatus::Rejected => "rejected",
            PublishStatus::Duplicate => "duplicate",
            _ => "accepted",
        };
        let reason = if status == PublishStatus::Rejected {
            reason
        } else {
            ""
        };
        sink.inc(self, Series::Events, &[label, reason]);
        match accepted.and_then(|e| e.payload.as_ref()) {
            Some(Payload::StepStarted(s)) => {
                let department = [s.department_id.as_str()];
                sink.inc(self, Series::StepsStarted, &department);
                // Created at zero now, so the first overrun is an increase Prometheus sees.
                if sink.first_sight(&[s.department_id.as_str(), "step"]) {
                    self.steps_overdue.with_label_values(&department);
                }
            }
            Some(Payload::CitizenRated(r)) => {
                let level = self.rating_labels.get(r.level() as usize);
                sink.inc(self, Series::Ratings, &[level.map_or("", String::as_str)]);
            }
            Some(Payload::ApologyIssued(a)) => {
                sink.inc(
                    self,
                    Series::Apologies,
                    &[a.department_id.as_str(), "issued"],
                );
            }
            _ => {}
        }
    }

    /// The registry in the Prometheus text format.
    pub(crate) fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        let mut out = String::from_utf8(out).unwrap_or_default();
        for series in Series::ALL {
            self.series(series).render(&mut out);
        }
        out
    }
}

/// The HTTP router: `/metrics` (text format 0.0.4), `/healthz` (alive) and `/readyz`
/// (200 once `ready`: in Kafka mode, not while partitions are being restored).
pub(crate) fn router(metrics: Metrics, ready: Arc<AtomicBool>) -> axum::Router {
    use axum::http::header::CONTENT_TYPE;
    use axum::http::StatusCode;
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
        .route(
            "/readyz",
            get(move || {
                let ready = ready.load(Ordering::Relaxed);
                async move {
                    if ready {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "restoring\n")
                    }
                }
            }),
        )
}
