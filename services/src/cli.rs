//! Command-line interface definition (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// dunghan ("đúng hạn", on time): deadlines for Vietnamese administrative dossiers on
/// business-day calendars, and SLA monitoring of their processing.
#[derive(Debug, Parser)]
#[command(name = "dunghan", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List a year's holidays, compensatory days and swapped working days.
    Calendar(CalendarArgs),
    /// Compute a deadline (the appointment on the receipt slip) and explain it.
    Deadline(DeadlineArgs),
    /// Run the embedded node until SIGTERM or Ctrl-C: gRPC (deadlines, event ingest,
    /// dossier timelines, health, reflection), Prometheus metrics, a durable store, timers
    /// on the wall clock. Prints one line per listener with its address.
    Serve(ServeArgs),
    /// Replay a file of dossier events (JSON lines) through the SLA engine, firing timers by
    /// event time; raised events go to stdout as JSON lines, a summary to stderr.
    Replay(ReplayArgs),
    /// Deliver raised events (a node's WatchSlaEvents stream, or a file) to an HTTP webhook,
    /// routed by department and escalation level through a directory file, with retries, a
    /// ledger of delivered ids and a dead-letter file; apology letters for APOLOGY_REQUIRED.
    Notify(crate::cmd_notify::NotifyArgs),
    /// Simulate a province (seeded, reproducible): a generated procedure catalog and its
    /// dossiers' events, sorted by event time, to a file, a node's gRPC ingest or Kafka.
    Loadgen(crate::cmd_loadgen::LoadgenArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Configuration file (TOML): [catalog] file, [calendar] file, [store] data_dir,
    /// [grpc] listen, [metrics] listen, [log] format/level, [engine] thresholds, [kafka];
    /// every key also as DUNGHAN__SECTION__KEY (environment beats file, flags beat both),
    /// librdkafka properties as DUNGHAN__KAFKA__PROPERTIES__NAME (dots as underscores).
    #[arg(long, value_name = "FILE", env = "DUNGHAN_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Procedure catalog file (TOML). Default: the example catalog in deploy/.
    #[arg(long, value_name = "FILE", env = "DUNGHAN__CATALOG__FILE")]
    pub(crate) catalog: Option<PathBuf>,
    /// Calendar file (TOML). Default: the national calendar.
    #[arg(long, value_name = "FILE", env = "DUNGHAN__CALENDAR__FILE")]
    pub(crate) calendar: Option<PathBuf>,
    /// Publish a JSON-lines file of DossierEvents at start (idempotent: events already
    /// stored are duplicates), then serve.
    #[arg(long, value_name = "FILE")]
    pub(crate) ingest: Option<PathBuf>,
    /// Data directory of the durable store (default ./data).
    #[arg(long, value_name = "DIR", env = "DUNGHAN__STORE__DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// gRPC address (default 127.0.0.1:50051; port 0 picks a free one).
    #[arg(long, value_name = "ADDR", env = "DUNGHAN__GRPC__LISTEN")]
    pub(crate) grpc_listen: Option<String>,
    /// Metrics address for /metrics and /healthz (default 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR", env = "DUNGHAN__METRICS__LISTEN")]
    pub(crate) metrics_listen: Option<String>,
    /// Log format on stderr: text (default) or json.
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    pub(crate) log_format: Option<String>,
    /// Start the service's clock at TIME (RFC 3339 with offset) instead of the wall clock;
    /// it then runs at real speed. For benches and drills only (logged as a warning);
    /// or [clock] start / DUNGHAN__CLOCK__START.
    #[arg(long, value_name = "TIME")]
    pub(crate) clock_start: Option<String>,
    /// Kafka mode: bootstrap brokers (host:port,…). The instance joins the consumer group
    /// [kafka] group_id, reads dunghan.dossier-events and writes dunghan.sla-events,
    /// dunghan.changelog and dunghan.dead-letter (topics created if missing); the data
    /// directory is not used. Without it, the embedded node runs.
    #[arg(long, value_name = "HOSTS", env = "DUNGHAN__KAFKA__BROKERS")]
    pub(crate) kafka_brokers: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// Events, one proto3-JSON `DossierEvent` per line; `-` reads standard input.
    pub(crate) events: String,
    /// Procedure catalog file (TOML); or `[catalog] file` in the config.
    #[arg(long, value_name = "FILE", env = "DUNGHAN__CATALOG__FILE")]
    pub(crate) catalog: Option<PathBuf>,
    /// Calendar file (TOML); or `[calendar] file` in the config; default: the national
    /// calendar.
    #[arg(long, value_name = "FILE", env = "DUNGHAN__CALENDAR__FILE")]
    pub(crate) calendar: Option<PathBuf>,
    /// Configuration file (TOML): `[catalog] file`, `[calendar] file` and the engine's rule
    /// thresholds in `[engine]` (warning_fraction = 0.75, apology_lead_days = 1.0,
    /// escalation_level2_delay_days = 1.0, max_future_secs = 86400,
    /// retain_ended_secs = 7776000). Any key can also be set as DUNGHAN__SECTION__KEY;
    /// the environment beats the file, flags beat both.
    #[arg(long, value_name = "FILE", env = "DUNGHAN_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// After the last event, advance time to this instant (RFC 3339 with offset), firing the
    /// rules due by then. Default: the latest event time.
    #[arg(long, value_name = "TIME")]
    pub(crate) until: Option<String>,
    /// The present moment (RFC 3339): events more than a day after it are refused as
    /// "future". Default: the wall clock when the replay starts.
    #[arg(long, value_name = "TIME")]
    pub(crate) now: Option<String>,
    /// Do not print the summary on stderr.
    #[arg(long)]
    pub(crate) quiet: bool,
}

/// Where the calendar comes from.
#[derive(Debug, Args)]
pub(crate) struct CalendarSource {
    /// Calendar file (TOML): province hours, local days, closures, offices, extra yearly
    /// schedules. Default: the national calendar shipped with dunghan.
    #[arg(long, value_name = "FILE", env = "DUNGHAN__CALENDAR__FILE")]
    pub(crate) calendar: Option<PathBuf>,
    /// Office whose calendar layer to use (from the calendar file).
    #[arg(long, value_name = "ID")]
    pub(crate) office: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CalendarArgs {
    /// The year, 1900–2100.
    pub(crate) year: i32,
    #[command(flatten)]
    pub(crate) source: CalendarSource,
    /// Print one JSON array of {"date","working","name",...} for every date whose working
    /// status differs from plain Monday–Friday.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("time_allowed")
        .required(true)
        .args(["working_days", "working_hours", "calendar_days", "months", "same_day", "procedure"]),
))]
pub(crate) struct DeadlineArgs {
    /// When the dossier was received, RFC 3339 with its UTC offset
    /// (e.g. 2026-02-13T16:20:00+07:00).
    #[arg(long, value_name = "TIME")]
    pub(crate) received: String,
    /// Time allowed in working days (fractions allowed, e.g. 0.5).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub(crate) working_days: Option<f64>,
    /// Time allowed in working hours.
    #[arg(long, value_name = "H", allow_negative_numbers = true)]
    pub(crate) working_hours: Option<f64>,
    /// Time allowed in calendar days (a result on a non-working day moves to the end of the
    /// next working day).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub(crate) calendar_days: Option<i64>,
    /// Time allowed in months.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub(crate) months: Option<i64>,
    /// Same day: due at the end of the receipt day (next working day after --cutoff).
    #[arg(long)]
    pub(crate) same_day: bool,
    /// Cut-off clock time (e.g. 15:00): received at or after it, counting starts the next
    /// working day.
    #[arg(long, value_name = "HH:MM")]
    pub(crate) cutoff: Option<String>,
    /// Where N working days end: same-clock-time (default) or end-of-day.
    #[arg(long, value_name = "ANCHOR")]
    pub(crate) anchor: Option<String>,
    /// Procedure code from the catalog (statutory, reduced and step deadlines).
    #[arg(long, value_name = "CODE", requires = "catalog")]
    pub(crate) procedure: Option<String>,
    /// Procedure catalog file (TOML).
    #[arg(long, value_name = "FILE", env = "DUNGHAN__CATALOG__FILE")]
    pub(crate) catalog: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) source: CalendarSource,
    /// Print a JSON object with "deadline" (RFC 3339, local offset) and "skipped".
    #[arg(long)]
    pub(crate) json: bool,
}
