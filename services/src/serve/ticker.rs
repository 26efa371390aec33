//! The embedded node's ticker: sleeps until the engine's next timer (at most a second, so
//! timers armed meanwhile by published events wait no longer than that), fires what is
//! due slice by slice, and refreshes the open-by-state gauge on its own slower cadence,
//! away from the moments timers are due.

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
        let waited = std::time::Instant::now();
        while run_on(node, |n| Ok(n.watch_backlog())).await? > WATCH_BUFFER - WATCH_HEADROOM
            && waited.elapsed() < WATCHER_WAIT
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (n, more) = run_on(node, |n| n.tick(clock::now_ms())).await?;
        if n > 0 {
            tracing::debug!(raised = n, "timers fired");
        }
        if !more {
            return Ok(());
        }
    }
}

/// Room a slice needs in the watchers' buffer (a slice's dossiers raise two or three
/// events each at most at one moment).
const WATCH_HEADROOM: usize = 16_384;
/// Longest wait for a slow watcher before the next slice fires anyway.
const WATCHER_WAIT: Duration = Duration::from_millis(500);

/// Runs until aborted. Failures are logged by `run_on`; the next round tries again.
pub(crate) async fn run(node: Arc<Mutex<Node>>) {
    let mut gauge_at = clock::now_ms();
    loop {
        // Fire everything due now, one slice per lock, so requests interleave.
        let failed = fire_due(&node).await.is_err();
        // Then write what went out unwritten, a chunk per lock, until a timer is due again.
        if !failed {
            loop {
                let left = run_on(&node, |n| n.write_deferred()).await.unwrap_or(0);
                let due = run_on(&node, |n| Ok(n.next_timer()))
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|t| t.saturating_mul(1000) <= clock::now_ms());
                if left == 0 || due {
                    break;
                }
            }
        }
        let now = clock::now_ms();
        // Off the async threads like every node call (a publish may hold the lock).
        let (next, open) = run_on(&node, |n| Ok((n.next_timer(), n.open_count())))
            .await
            .unwrap_or((None, 0));
        let next_ms = next.map(|t| t.saturating_mul(1000));
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
            Some(t) if !failed => (t - now).clamp(0, MAX_SLEEP_MS),
            _ => MAX_SLEEP_MS,
        };
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
    }
}
