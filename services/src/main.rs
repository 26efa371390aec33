//! The `dunghan` binary: parses the command line and dispatches to a command.

mod cli;
mod clock;
mod cmd_calendar;
mod cmd_deadline;
mod cmd_loadgen;
mod cmd_notify;
mod cmd_replay;
mod config;
mod convert;
mod files;
mod format;
mod kafka;
mod loadgen;
mod notify;
mod serve;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the system allocator: the decoders, the engine and the Kafka and
/// gRPC paths allocate a few small strings per event, and with mimalloc Kafka-mode serve
/// spends 15–20 % less CPU per event, for about a quarter more resident memory. It also
/// replaces `malloc` for the C code (the crate's `override` feature): librdkafka
/// allocates each produced message on the consumer thread and frees it on its delivery
/// thread, and under glibc those frees contended for the consumer's arena lock (about
/// 18 % more events per second without it; BENCHMARKS.md, 2026-12-01).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A user's mistake (bad value, unreadable file): one line on stderr, exit status 2.
#[derive(Debug)]
pub(crate) struct InputError(pub(crate) String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// Shorthand for returning an [`InputError`].
pub(crate) fn input_error<T>(message: impl Into<String>) -> anyhow::Result<T> {
    Err(InputError(message.into()).into())
}

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line naming the bad value; the usage is one `--help` away.
            let rendered = e.render().to_string();
            let message: Vec<&str> = rendered
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:"))
                .filter(|l| !l.is_empty())
                .collect();
            eprintln!("{} (see `dunghan --help`)", message.join(" "));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        cli::Command::Calendar(args) => cmd_calendar::run(args),
        cli::Command::Deadline(args) => cmd_deadline::run(args),
        cli::Command::Replay(args) => cmd_replay::run(args),
        cli::Command::Serve(args) => serve::run(args),
        cli::Command::Notify(args) => cmd_notify::run(args),
        cli::Command::Loadgen(args) => cmd_loadgen::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<InputError>() => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
