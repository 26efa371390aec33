//! A thread per input partition in Kafka mode: it polls the partition's own queue
//! (split from the consumer's), applies each record and sends what it raised, and moves
//! the partition's stream time with the wall clock once it has caught up. The consumer
//! thread keeps the group membership, the checkpoints and any partition without a thread.
//!
//! The thread holds the partitions' read lock from each poll until the record is applied,
//! so an assignment, revocation or reset (which take the write lock) never finds a record
//! taken from the queue and not yet applied: after one, a record polled before it would
//! be out of order (a reset seeks back to the checkpoint).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::error::KafkaError;

use super::runtime::{advance, handle, reached_end, Context, Shared, CLOCK_TICK};
use crate::serve::metrics::Tally;

/// How long one poll of the partition's queue waits for a record: also the longest an
/// assignment, revocation or reset waits for this thread to pause.
const POLL: Duration = Duration::from_millis(20);
/// Records applied under one read lock of the partitions (each lock is shared memory
/// written by every partition thread): a pause waits for at most this many.
const RECORDS_PER_LOCK: usize = 64;

/// Starts the thread of input partition `id`, reading `queue`, until `stop`. A panic in it
/// stops the process (as a poisoned partition lock does): a partition nobody applies would
/// only fall behind, where a restart gives it to an instance that does.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    queue: PartitionQueue<Context>,
    id: i32,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("dunghan-p{id}"))
        .spawn(move || {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run(&shared, &queue, id, &stop)
            }));
            if ran.is_err() {
                tracing::error!(partition = id, "partition thread panicked: exiting");
                std::process::exit(1);
            }
        })
}

fn run(shared: &Shared, queue: &PartitionQueue<Context>, id: i32, stop: &AtomicBool) {
    let mut last_clock = Instant::now();
    let mut tally = Tally::new();
    while !stop.load(Ordering::Relaxed) {
        if shared.failing() {
            // A write failed: the consumer thread resets every partition; records wait.
            std::thread::sleep(POLL);
            continue;
        }
        let parts = shared.partitions();
        // Up to `RECORDS_PER_LOCK` records under one read lock: the first poll waits, the
        // others take only what is already queued.
        let mut result = Ok(());
        let mut wait = POLL;
        // Whether the queue ran dry or the partition's end was reached: the counts go to
        // the shared metrics at once.
        let mut idle = false;
        for _ in 0..RECORDS_PER_LOCK {
            match queue.poll(wait) {
                Some(Ok(m)) => result = handle(shared, &parts, &m, &mut tally),
                Some(Err(KafkaError::PartitionEOF(_))) => {
                    reached_end(&parts, id);
                    idle = true;
                }
                Some(Err(e)) => tracing::warn!(partition = id, error = %e, "consumer"),
                None => {
                    idle = true;
                    break;
                }
            }
            if result.is_err() {
                break;
            }
            wait = Duration::ZERO;
        }
        // Only a partition at its end follows the wall clock (`advance` checks).
        let result = result.and_then(|()| {
            if last_clock.elapsed() >= CLOCK_TICK {
                last_clock = Instant::now();
                advance(shared, &parts, id, &mut tally)
            } else {
                Ok(())
            }
        });
        drop(parts);
        tally.flush(idle);
        if let Err(e) = result {
            tracing::error!(partition = id, error = %e, "write failed: the partitions reset");
        }
    }
}
