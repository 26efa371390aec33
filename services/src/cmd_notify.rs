//! `dunghan notify`: the command line of the alert handler (flags over
//! `DUNGHAN_NOTIFY__…` variables over the config file), its start-up checks, and the run
//! until the source ends or SIGTERM / Ctrl-C.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::notify::config::NotifyConfig;
use crate::notify::deliver::{DeadLetters, Ledger, Webhook};
use crate::notify::directory::Directory;
use crate::notify::source::{FileSource, GrpcSource};
use crate::notify::Notifier;
use crate::InputError;

#[derive(Debug, Args)]
pub(crate) struct NotifyArgs {
    /// Configuration file (TOML): [source] grpc/agency/department, [webhook] url,
    /// max_attempts, initial_backoff_ms, max_backoff_ms, timeout_ms, token, [state] dir,
    /// [routing] directory/catalog/kinds, [log] format/level; every key also as
    /// DUNGHAN_NOTIFY__SECTION__KEY (environment beats file, flags beat both).
    #[arg(long, value_name = "FILE", env = "DUNGHAN_NOTIFY_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// gRPC address of a node to watch (e.g. http://127.0.0.1:50051).
    #[arg(long, value_name = "URL")]
    pub(crate) grpc: Option<String>,
    /// Read raised events from a JSON-lines file instead (a `dunghan replay` output or a
    /// dead-letter file), then exit: backfills and redrives.
    #[arg(long, value_name = "FILE", conflicts_with = "grpc")]
    pub(crate) from_file: Option<PathBuf>,
    /// Only this agency's events.
    #[arg(long, value_name = "ID")]
    pub(crate) agency: Option<String>,
    /// Only events naming this department.
    #[arg(long, value_name = "ID")]
    pub(crate) department: Option<String>,
    /// Webhook URL (http://) receiving one JSON POST per event.
    #[arg(long, value_name = "URL")]
    pub(crate) webhook_url: Option<String>,
    /// Directory file (TOML): the one-stop centre, agencies' leaders, departments' heads.
    #[arg(long, value_name = "FILE")]
    pub(crate) directory: Option<PathBuf>,
    /// Procedure catalog, for procedure names in apology letters.
    #[arg(long, value_name = "FILE")]
    pub(crate) catalog: Option<PathBuf>,
    /// State directory: delivered.log and dead-letter.jsonl (default ./notify-state).
    #[arg(long, value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    /// Attempts per event before the dead-letter file (default 5).
    #[arg(long, value_name = "N")]
    pub(crate) max_attempts: Option<u32>,
    /// First wait between attempts in milliseconds, doubling each time (default 500).
    #[arg(long, value_name = "MS")]
    pub(crate) initial_backoff_ms: Option<u64>,
    /// Log format on stderr: text (default) or json.
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    pub(crate) log_format: Option<String>,
}

/// Applies the flags over the loaded configuration.
fn configure(args: &NotifyArgs) -> Result<NotifyConfig, String> {
    let env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let mut c = NotifyConfig::load(args.config.as_deref(), env)?;
    let set = |to: &mut Option<String>, from: &Option<String>| {
        if from.is_some() {
            to.clone_from(from);
        }
    };
    set(&mut c.source.grpc, &args.grpc);
    set(&mut c.source.agency, &args.agency);
    set(&mut c.source.department, &args.department);
    set(&mut c.webhook.url, &args.webhook_url);
    set(&mut c.log.format, &args.log_format);
    if let Some(dir) = &args.directory {
        c.routing.directory = Some(dir.clone());
    }
    if let Some(catalog) = &args.catalog {
        c.routing.catalog = Some(catalog.clone());
    }
    if let Some(dir) = &args.state_dir {
        c.state.dir = Some(dir.clone());
    }
    if let Some(n) = args.max_attempts {
        c.webhook.max_attempts = n;
    }
    if let Some(ms) = args.initial_backoff_ms {
        c.webhook.initial_backoff_ms = ms;
    }
    c.validate(args.from_file.is_some())?;
    if c.routing.directory.is_none() {
        return Err(
            "no directory file: set --directory, [routing] directory or DUNGHAN_NOTIFY__ROUTING__DIRECTORY"
                .into(),
        );
    }
    Ok(c)
}

pub(crate) fn run(args: NotifyArgs) -> anyhow::Result<()> {
    let config = configure(&args).map_err(InputError)?;
    crate::serve::init_logging(config.log.format.as_deref(), config.log.level.as_deref());
    let directory_file = config.routing.directory.clone().unwrap_or_default();
    let directory = Directory::load(&directory_file).map_err(InputError)?;
    let catalog = match &config.routing.catalog {
        Some(path) => Some(crate::files::load_catalog(path)?),
        None => None,
    };
    let state = config
        .state
        .dir
        .clone()
        .unwrap_or_else(|| "notify-state".into());
    let ledger = Ledger::open(&state).map_err(|e| InputError(e.to_string()))?;
    let url = config.webhook.url.clone().unwrap_or_default();
    let webhook = Webhook::new(
        &url,
        config.webhook.token.clone(),
        Duration::from_millis(config.webhook.timeout_ms),
    )?;
    tracing::info!(delivered_before = ledger.len(), state = %state.display(), webhook = %url, "notifier ready");
    let mut notifier = Notifier {
        directory,
        catalog,
        kinds: config.kinds(),
        webhook,
        retry: config.webhook.clone(),
        ledger,
        dead_letters: DeadLetters::new(&state),
        summary: Default::default(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let summary = runtime.block_on(async {
        match &args.from_file {
            Some(path) => {
                let mut source = FileSource::open(path.clone())?;
                notifier
                    .run(&mut source, crate::serve::wait_for_signal())
                    .await
            }
            None => {
                let endpoint = config.source.grpc.clone().unwrap_or_default();
                let mut source = GrpcSource::new(
                    endpoint.clone(),
                    config.source.agency.clone().unwrap_or_default(),
                    config.source.department.clone().unwrap_or_default(),
                );
                source
                    .open()
                    .await
                    .map_err(|e| InputError(format!("cannot watch {endpoint}: {e}")))?;
                // One line on stdout once the stream is open: events raised from now on.
                println!("watching raised events of {endpoint}");
                notifier
                    .run(&mut source, crate::serve::wait_for_signal())
                    .await
            }
        }
    })?;
    println!("{summary}");
    Ok(())
}
