//! The helpers of `benches/timer_lag.sh` (fire lag of timers at a 17:00 burst):
//!
//! - `timer-lag gen N BURST_SHARE DIR`: a catalog and N open dossiers (a receipt and one
//!   active step each) as JSON lines; the share BURST_SHARE of them is due exactly at
//!   Fri 20/11/2026 17:00 +07:00 (5 working days, end of the day), the rest in December.
//! - `timer-lag watch GRPC METRICS FROM_UNIX QUIET_SECS`: watches a node's raised events
//!   (`WatchSlaEvents`) and prints, for those whose moment is at or after FROM, the lag
//!   "received by the watcher minus raised_at" (p50, p99, max), on the node's clock
//!   (its `dunghan_clock_offset_seconds` added to the system clock). Ends QUIET_SECS after
//!   the last event.
//! - `timer-lag naive N BURST_SHARE`: the naive peer: one tokio task sleeping until its
//!   due time per timer (N timers, BURST_SHARE of them due at one instant a few seconds
//!   ahead, the rest a day later), each recording its wake-up lag; prints p50, p99, max.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dunghan_benches::SplitMix64;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const CATALOG: &str = r#"# timer-lag bench catalog (benches/timer_lag.rs)
[[procedure]]
code = "B.001"
name = "Burst: 5 working days to the end of the day"
field = "Bench"
agency = "agency-0"
effective_from = 2020-01-01
statutory = { working_days = 5 }
anchor = "end-of-day"
[[procedure.steps]]
id = "xu-ly"
department = "phong-xu-ly"
allotted = { working_days = 4 }

[[procedure]]
code = "L.001"
name = "Later: 10 working days"
field = "Bench"
agency = "agency-0"
effective_from = 2020-01-01
statutory = { working_days = 10 }
[[procedure.steps]]
id = "xu-ly"
department = "phong-xu-ly"
allotted = { working_days = 4 }
"#;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> Result<&str> {
        args.get(i)
            .map(String::as_str)
            .ok_or_else(|| "usage: timer-lag gen|watch|naive ... (see benches/timer_lag.rs)".into())
    };
    match arg(0)? {
        "gen" => gen(arg(1)?.parse()?, arg(2)?.parse()?, arg(3)?),
        "watch" => watch(arg(1)?, arg(2)?, arg(3)?.parse()?, arg(4)?.parse()?),
        "naive" => naive(arg(1)?.parse()?, arg(2)?.parse()?),
        other => Err(format!("unknown command {other}").into()),
    }
}

/// A working-hours clock time (07:30–11:30, 13:00–16:30) as "HH:MM:SS".
fn office_time(rng: &mut SplitMix64) -> String {
    let s = rng.range(0, 7 * 3600 + 1800);
    let s = if s < 4 * 3600 {
        7 * 3600 + 1800 + s
    } else {
        13 * 3600 + s - 4 * 3600
    };
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn gen(n: usize, burst_share: f64, dir: &str) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(format!("{dir}/catalog.toml"), CATALOG)?;
    let file = std::fs::File::create(format!("{dir}/events.jsonl"))?;
    let mut out = std::io::BufWriter::new(file);
    let mut rng = SplitMix64::new(17);
    let burst = (n as f64 * burst_share).round() as usize;
    let mut line = String::new();
    for i in 0..n {
        // Burst: received Fri 13/11, due at the end of the 5th working day after: Fri 20/11
        // 17:00. Later: received Thu 19/11, due in December.
        let (code, day) = if i < burst {
            ("B.001", "2026-11-13")
        } else {
            ("L.001", "2026-11-19")
        };
        let time = office_time(&mut rng);
        let id = format!("HS-2026-{i:08}");
        line.clear();
        writeln!(
            line,
            r#"{{"eventId":"{id}-r","dossierId":"{id}","occurredAt":"{day}T{time}+07:00","received":{{"procedureCode":"{code}","agencyId":"agency-{}","channel":"CHANNEL_ONLINE"}}}}"#,
            i % 40
        )?;
        // The step starts a minute later (still in working hours: receipts end at 16:30).
        let (h, rest) = time.split_at(2);
        let minute: u32 = rest[1..3].parse()?;
        let (h, minute) = if minute == 59 {
            (h.parse::<u32>()? + 1, 0)
        } else {
            (h.parse::<u32>()?, minute + 1)
        };
        writeln!(
            line,
            r#"{{"eventId":"{id}-s","dossierId":"{id}","occurredAt":"{day}T{h:02}:{minute:02}{}+07:00","stepStarted":{{"stepId":"xu-ly","departmentId":"phong-{}"}}}}"#,
            &rest[3..],
            i % 300
        )?;
        out.write_all(line.as_bytes())?;
    }
    out.flush()?;
    eprintln!("timer-lag gen: {n} open dossiers, {burst} due at 2026-11-20T17:00:00+07:00");
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(who: &str, mut lags_ms: Vec<f64>) {
    lags_ms.sort_by(f64::total_cmp);
    println!(
        "{who}: {} fired, lag p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lags_ms.len(),
        percentile(&lags_ms, 0.5),
        percentile(&lags_ms, 0.99),
        lags_ms.last().copied().unwrap_or(f64::NAN)
    );
}

fn system_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// The node's clock offset (s) from its /metrics.
fn clock_offset(metrics: &str) -> Result<f64> {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(metrics)?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {metrics}\r\n\r\n")?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    body.lines()
        .find_map(|l| l.strip_prefix("dunghan_clock_offset_seconds "))
        .ok_or("no dunghan_clock_offset_seconds in /metrics")?
        .trim()
        .parse::<f64>()
        .map_err(Into::into)
}

fn watch(grpc: &str, metrics: &str, from: i64, quiet_secs: u64) -> Result<()> {
    use dunghan_proto::v1::sla_service_client::SlaServiceClient;
    use dunghan_proto::v1::WatchSlaEventsRequest;
    let offset_ms = clock_offset(metrics)? * 1000.0;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut client = SlaServiceClient::connect(format!("http://{grpc}"))
            .await?
            .max_decoding_message_size(4 << 20);
        let mut stream = client
            .watch_sla_events(WatchSlaEventsRequest::default())
            .await?
            .into_inner();
        eprintln!("timer-lag watch: watching (node clock offset {offset_ms:.0} ms)");
        let mut lags = Vec::new();
        let mut ended = None;
        loop {
            let wait = if lags.is_empty() { 3600 } else { quiet_secs };
            match tokio::time::timeout(Duration::from_secs(wait), stream.message()).await {
                Err(_) => break,
                Ok(Ok(Some(e))) => {
                    let now = system_ms() + offset_ms;
                    if let Some(t) = e.raised_at.filter(|t| t.seconds >= from) {
                        let moment = t.seconds as f64 * 1000.0 + f64::from(t.nanos) / 1e6;
                        lags.push(now - moment);
                    }
                }
                Ok(Ok(None)) => break,
                Ok(Err(status)) => {
                    ended = Some(status);
                    break;
                }
            }
        }
        report("dunghan serve (watcher)", lags);
        if let Some(status) = ended {
            println!("watch ended early: {status}");
        }
        Ok(())
    })
}

fn naive(n: usize, burst_share: f64) -> Result<()> {
    let burst = (n as f64 * burst_share).round() as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // Long enough ahead that every task is spawned before the burst.
        let lead = Duration::from_millis(3_000 + n as u64 / 200);
        let start = tokio::time::Instant::now();
        let at = start + lead;
        let later = at + Duration::from_secs(86_400);
        let lags: Arc<Vec<AtomicU32>> = Arc::new((0..burst).map(|_| AtomicU32::new(0)).collect());
        let fired = Arc::new(AtomicU32::new(0));
        for i in 0..n {
            let (lags, fired) = (lags.clone(), fired.clone());
            let due = if i < burst { at } else { later };
            tokio::spawn(async move {
                tokio::time::sleep_until(due).await;
                let lag = Instant::now().saturating_duration_since(due.into_std());
                if let Some(slot) = lags.get(i) {
                    slot.store(lag.as_micros() as u32, Ordering::Relaxed);
                }
                fired.fetch_add(1, Ordering::Relaxed);
            });
        }
        let spawned = start.elapsed();
        eprintln!(
            "timer-lag naive: {n} tasks spawned in {spawned:?}; burst of {burst} in {:?}",
            lead.saturating_sub(spawned)
        );
        while (fired.load(Ordering::Relaxed) as usize) < burst {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let lags_ms = lags
            .iter()
            .map(|l| f64::from(l.load(Ordering::Relaxed)) / 1000.0)
            .collect();
        report("naive peer (one sleep_until task per timer)", lags_ms);
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    // The pending tasks are dropped with the runtime.
    Ok(())
}
