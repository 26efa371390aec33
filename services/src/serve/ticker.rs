//! The embedded node's ticker: sleeps until the engine's next timer (at most a second, so
//! timers armed meanwhile by published events wait no longer than that), fires what is
//! due slice by slice, computes a crowded moment (the 17:00 burst) in the seconds before
//! it so that at the moment it only sends, and refreshes the open-by-state gauge on its
//! own slower cadence, away from the moments timers are due.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::node::{run_on, Node, WATCH_BUFFER};
use crate::clock;

/// Longest sleep between two looks at the engine's next timer (ms).
const MAX_SLEEP_MS: i64 = 1_000;
/// The open-by-state gauge's cadence (ms) on a large node …
const GAUGE_EVERY_MS: i64 = 15_000;
/// … and below this many open dossiers, where the pass costs a millisecond or two, every
/// second as before.
const SMALL_NODE: usize = 100_000;
/// The gauge's pass waits while a timer is due within this many ms (it would delay it),
/// but never more than [`GAUGE_MAX_DELAY_MS`] past its cadence.
const GAUGE_CLEARANCE_MS: i64 = 2_000;
const GAUGE_MAX_DELAY_MS: i64 = 60_000;

/// Fires the slices due now. Before each, waits (at most [`WATCHER_WAIT`]) while the
/// slowest watcher is so far behind that the slice could overrun its buffer: a burst then
/// goes out as fast as watchers take it, and only a watcher stuck for longer is dropped.
async fn fire_due(node: &Arc<Mutex<Node>>) -> Result<(), tonic::Status> {
    loop {
        wait_for_watchers(node, WATCH_BUFFER - WATCH_HEADROOM).await;
        let (n, more) = run_on(node, |n| n.tick(clock::now_ms())).await?;
        if n > 0 {
            tracing::debug!(raised = n, "timers fired");
        }
        if !more {
            return Ok(());
        }
    }
}

/// Waits (at most [`WATCHER_WAIT`]) while the watchers have more than `backlog` slices
/// to take: before firing (so as not to overrun them), and before each write of what
/// went out (the writes can wait; the watchers of a burst should not share the cores
/// with them).
async fn wait_for_watchers(node: &Arc<Mutex<Node>>, backlog: usize) {
    let waited = std::time::Instant::now();
    while run_on(node, |n| Ok(n.watch_backlog()))
        .await
        .is_ok_and(|b| b > backlog)
        && waited.elapsed() < WATCHER_WAIT
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Room a round needs in the watchers' buffer, in slices (a prepared moment goes out as
/// one slice per [`super::node::FIRE_SLICE`] dossiers: 25 for 100 000).
const WATCH_HEADROOM: usize = 1_024;
/// Longest wait for a slow watcher before the next slice fires anyway.
const WATCHER_WAIT: Duration = Duration::from_millis(500);

/// A moment at which at least this many dossiers fall due is prepared ahead of time …
const PREPARE_MIN: usize = 1_000;
/// … from this many seconds before it (100 000 dossiers take about half a second here) …
const PREPARE_LEAD_S: i64 = 10;
/// … looking for one at most this often (a pass over the timers: ≈ 10 ms at 10 M).
const PREPARE_SCAN_MS: i64 = 2_000;

/// The next moment a timer or the prepared moment is due (Unix ms).
fn next_due(node: &Node) -> Option<i64> {
    let next = match (node.next_timer(), node.prepared_at()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    next.map(|t| t.saturating_mul(1000))
}

/// Prepares a crowded moment ahead of time ([`Node::prepare`]), one slice per lock, until
/// it is prepared, its moment comes (the rest then fires at the moment as usual) or a
/// timer is due (the next round goes on). `preparing` is the moment being prepared and
/// when its preparation began; `scan_at` when to look for one next.
async fn prepare(
    node: &Arc<Mutex<Node>>,
    preparing: &mut Option<(i64, std::time::Instant)>,
    scan_at: &mut i64,
) {
    let now = clock::now_ms();
    if preparing.is_none() && now >= *scan_at {
        *scan_at = now + PREPARE_SCAN_MS;
        let s = now.div_euclid(1000);
        *preparing = run_on(node, move |n| {
            let free = n.prepared_at().is_none();
            Ok(free.then(|| n.crowded_moment(s, s + PREPARE_LEAD_S, PREPARE_MIN)))
        })
        .await
        .ok()
        .flatten()
        .flatten()
        .map(|at| (at, std::time::Instant::now()));
    }
    while let Some((at, started)) = *preparing {
        if clock::now_ms() >= at.saturating_mul(1000) {
            tracing::warn!(
                at = %dunghan_calendar::from_ts(at).to_rfc3339(),
                "a crowded moment came before it was prepared; the rest fires now"
            );
            *preparing = None;
            return;
        }
        let Ok((more, due, dossiers)) = run_on(node, move |n| {
            let more = n.prepare(at);
            let due = n
                .next_timer()
                .is_some_and(|t| t < at && t * 1000 <= clock::now_ms());
            Ok((more, due, n.prepared_dossiers()))
        })
        .await
        else {
            return;
        };
        if !more {
            tracing::info!(
                at = %dunghan_calendar::from_ts(at).to_rfc3339(),
                dossiers,
                seconds = started.elapsed().as_secs_f64(),
                "prepared a crowded moment"
            );
            *preparing = None;
        }
        if due {
            return;
        }
    }
}

/// Runs until aborted. Failures are logged by `run_on`; the next round tries again.
pub(crate) async fn run(node: Arc<Mutex<Node>>) {
    let mut gauge_at = clock::now_ms();
    let (mut preparing, mut scan_at) = (None, 0);
    loop {
        // Fire everything due now, one slice per lock, so requests interleave.
        let failed = fire_due(&node).await.is_err();
        // Then prepare a crowded moment, then write what went out unwritten, a chunk per
        // lock, until something is due again (a timer, a look for a moment to prepare).
        let mut unwritten = 0;
        if !failed {
            prepare(&node, &mut preparing, &mut scan_at).await;
            loop {
                wait_for_watchers(&node, 0).await;
                let (left, next) = run_on(&node, |n| Ok((n.write_deferred()?, next_due(n))))
                    .await
                    .unwrap_or((0, None));
                unwritten = left;
                let due = next.is_some_and(|t| t <= clock::now_ms());
                if unwritten == 0 || due || preparing.is_some() || clock::now_ms() >= scan_at {
                    break;
                }
            }
        }
        let now = clock::now_ms();
        // Off the async threads like every node call (a publish may hold the lock).
        let (next_ms, open) = run_on(&node, |n| Ok((next_due(n), n.open_count())))
            .await
            .unwrap_or((None, 0));
        if now >= gauge_at {
            let clear = next_ms.is_none_or(|t| t - now > GAUGE_CLEARANCE_MS);
            if clear || now - gauge_at > GAUGE_MAX_DELAY_MS {
                let _ = run_on(&node, move |n| {
                    n.refresh_open_by_state(now.div_euclid(1000));
                    Ok(())
                })
                .await;
                let every = if open < SMALL_NODE {
                    MAX_SLEEP_MS
                } else {
                    GAUGE_EVERY_MS
                };
                gauge_at = now + every;
            }
        }
        let now = clock::now_ms();
        let wait = match next_ms {
            // Writing goes on at once in the next round.
            _ if !failed && unwritten > 0 => 0,
            Some(t) if !failed => (t - now).clamp(0, MAX_SLEEP_MS),
            _ => MAX_SLEEP_MS,
        };
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
    }
}
