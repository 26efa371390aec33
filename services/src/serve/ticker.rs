//! The embedded node's ticker: sleeps until the engine's next timer (at most a second, so
//! timers armed meanwhile by published events wait no longer than that), fires what is
//! due slice by slice, and refreshes the open-by-state gauge on its own slower cadence,
//! away from the moments timers are due.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::node::{run_on, Node};
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

/// Runs until aborted. Failures are logged by `run_on`; the next round tries again.
pub(crate) async fn run(node: Arc<Mutex<Node>>) {
    let mut gauge_at = clock::now_ms();
    loop {
        // Fire everything due now, one slice per lock, so requests interleave.
        let mut failed = false;
        loop {
            match run_on(&node, |n| n.tick(clock::now_ms())).await {
                Ok((n, more)) => {
                    if n > 0 {
                        tracing::debug!(raised = n, "timers fired");
                    }
                    if !more {
                        break;
                    }
                }
                Err(_) => {
                    failed = true;
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
