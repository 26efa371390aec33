//! `dunghan replay`: dossier events from a JSON-lines file through the engine, by event time.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};

use dunghan_core::{Engine, Raised, Stats};

use crate::cli::ReplayArgs;
use crate::config::Config;
use crate::convert::{to_event, to_sla_event};
use crate::files::{load_calendars, load_catalog};
use crate::format::parse_instant;
use crate::InputError;

pub(crate) fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let config = Config::load(args.config.as_deref(), env).map_err(InputError)?;
    let Some(catalog) = args.catalog.or(config.catalog.file) else {
        return Err(InputError(
            "no catalog: give --catalog FILE, DUNGHAN__CATALOG__FILE or [catalog] file in --config"
                .into(),
        )
        .into());
    };
    let catalog = load_catalog(&catalog)?;
    let calendars = load_calendars(args.calendar.or(config.calendar.file).as_deref())?;
    let until = args
        .until
        .as_deref()
        .map(|u| parse_instant("--until", u))
        .transpose()
        .map_err(InputError)?;
    let now = match args.now.as_deref() {
        Some(n) => parse_instant("--now", n).map_err(InputError)?,
        None => wall_clock(),
    };
    let (input, size): (Box<dyn Read>, Option<u64>) = if args.events == "-" {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let file = std::fs::File::open(&args.events)
            .map_err(|e| InputError(format!("cannot read events file {}: {e}", args.events)))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let progress = progress_bar(size);
    let mut input = BufReader::with_capacity(1 << 16, input);
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut engine = Engine::new(catalog, calendars, config.engine);
    engine.set_present(now);
    let mut raised = Vec::new();
    let mut line = Vec::new();
    let (mut number, mut read) = (0u64, 0u64);
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|e| InputError(format!("cannot read events file {}: {e}", args.events)))?;
        if n == 0 {
            break;
        }
        number += 1;
        read += n as u64;
        if number % 4096 == 0 {
            progress.set_position(read);
        }
        match decode(&line) {
            Ok(None) => continue,
            Ok(Some(event)) => engine.apply(&event, &mut raised),
            Err((dossier, event_id, msg)) => {
                let event_id = event_id.unwrap_or_else(|| format!("line-{number}"));
                raised.push(engine.reject_malformed(
                    &dossier,
                    &event_id,
                    format!("line {number}: {msg}"),
                ));
            }
        }
        if !write_all(&mut out, &mut raised)? {
            return Ok(());
        }
    }
    if let Some(end) = until.or(engine.clock()) {
        engine.advance_to(end, &mut raised);
    }
    if !write_all(&mut out, &mut raised)? {
        return Ok(());
    }
    progress.finish_and_clear();
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    if !args.quiet {
        eprint!(
            "{}",
            summary(&engine.stats(), number, engine.open_dossiers())
        );
    }
    Ok(())
}

/// The wall clock in Unix seconds (services own the clock; the engine never reads it).
fn wall_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A line → an event; `None` for a blank line; a malformed line → (dossier, event id, why).
fn decode(line: &[u8]) -> Result<Option<dunghan_core::Event>, (String, Option<String>, String)> {
    let text =
        std::str::from_utf8(line).map_err(|_| (String::new(), None, "not UTF-8".to_owned()))?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    let wire = dunghan_proto::json::from_str(text).map_err(|e| {
        // Name the dossier and event if the line is JSON at all, so the rejection can be traced.
        let value: Option<serde_json::Value> = serde_json::from_str(text).ok();
        let field = |k: &str| {
            value
                .as_ref()
                .and_then(|v| v.get(k))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        (
            field("dossierId").unwrap_or_default(),
            field("eventId"),
            format!("invalid event: {e}"),
        )
    })?;
    let (dossier, event_id) = (wire.dossier_id.clone(), wire.event_id.clone());
    let event_id = (!event_id.is_empty()).then_some(event_id);
    to_event(wire).map(Some).map_err(|m| (dossier, event_id, m))
}

/// Writes raised events as JSON lines; false when the reader has gone away.
fn write_all(out: &mut impl Write, raised: &mut Vec<Raised>) -> anyhow::Result<bool> {
    for r in raised.drain(..) {
        let line = serde_json::to_string(&to_sla_event(&r))?;
        match writeln!(out, "{line}") {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(false),
            Err(e) => return Err(e.into()),
            Ok(()) => {}
        }
    }
    Ok(true)
}

fn progress_bar(size: Option<u64>) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    match size {
        Some(size) => indicatif::ProgressBar::new(size).with_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        ),
        None => indicatif::ProgressBar::new_spinner(),
    }
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or("-".into(), |r| format!("{:.1}%", r * 100.0))
}

/// The per-agency summary printed on stderr.
fn summary(stats: &Stats, lines: u64, open: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<24} {:>8} {:>6} {:>7} {:>5} {:>8} {:>9} {:>7} {:>14} {:>11} {:>8}",
        "agency",
        "received",
        "early",
        "on-time",
        "late",
        "on-time%",
        "withdrawn",
        "refused",
        "apologies r/i/o",
        "escal. 1/2/3",
        "satisf.%"
    );
    for (agency, a) in &stats.agencies {
        let _ = writeln!(
            s,
            "{:<24} {:>8} {:>6} {:>7} {:>5} {:>8} {:>9} {:>7} {:>14} {:>11} {:>8}",
            agency,
            a.received,
            a.early,
            a.on_time,
            a.late,
            percent(a.on_time_rate()),
            a.withdrawn,
            a.refused,
            format!(
                "{}/{}/{}",
                a.apologies_required, a.apologies_issued, a.apologies_overdue
            ),
            format!(
                "{}/{}/{}",
                a.escalations[0], a.escalations[1], a.escalations[2]
            ),
            percent(a.satisfaction_rate()),
        );
    }
    let rejected: u64 = stats.rejected.values().sum();
    let reasons: Vec<String> = stats
        .rejected
        .iter()
        .map(|(r, n)| format!("{} {n}", r.as_str()))
        .collect();
    let _ = writeln!(
        s,
        "lines {lines}, events applied {}, rejected {rejected}{}, duplicates ignored {}, dossiers not yet returned {open}",
        stats.events_applied,
        if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join(", ")) },
        stats.duplicates,
    );
    s
}
