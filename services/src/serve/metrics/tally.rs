//! A thread's own counts of the per-event metrics (each Kafka partition thread keeps
//! one): added to the shared counters by [`Tally::flush`], so counting a record takes no
//! lock and writes no atomic that other threads write too (but for a series' first count).

use std::time::{Duration, Instant};

use rustc_hash::FxBuildHasher;

use super::family::Counter;
use super::{join_into, Metrics, Series, Sink};

/// How long counts may wait in a busy thread's tally (an idle one flushes at once).
const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// Counts of one thread not yet in the shared counters, by series and a 64-bit hash of
/// the label values (xxh3 of each, seeded by the hash of those before it, the first by a
/// random key: label values come from publishers, and a known hash would let two label
/// sets be made to share one count). The shared counters key their series by the values
/// themselves (`family.rs`); prometheus' own local counters were a third of the counting
/// cost (a byte-wise FNV then SipHash for each count).
pub(crate) struct Tally {
    /// Index in `pending` by (series, label hash).
    index: hashbrown::HashMap<(Series, u64), usize, FxBuildHasher>,
    pending: Vec<Pending>,
    /// Indexes in `pending` counted since the last flush (a flush visits only these).
    touched: Vec<usize>,
    /// Keys whose zero series this thread knows exist ([`Sink::first_sight`]).
    seen: hashbrown::HashSet<String>,
    scratch: String,
    flushed: Instant,
    /// The random seed of the label hash.
    key: u64,
}

/// A shared counter and what this thread has yet to add to it.
struct Pending {
    counter: Counter,
    count: u64,
}

impl std::fmt::Debug for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tally")
            .field("series", &self.pending.len())
            .field("seen", &self.seen.len())
            .finish_non_exhaustive()
    }
}

impl Tally {
    pub(crate) fn new() -> Tally {
        Tally {
            index: hashbrown::HashMap::default(),
            pending: Vec::new(),
            touched: Vec::new(),
            seen: hashbrown::HashSet::default(),
            scratch: String::new(),
            flushed: Instant::now(),
            key: std::hash::BuildHasher::hash_one(&hashbrown::DefaultHashBuilder::default(), 0u8),
        }
    }

    /// Adds the counts to the shared counters if `idle` (nothing more to apply now) or
    /// [`FLUSH_EVERY`] has passed since the last time: each flush is an atomic add per
    /// series counted since the last one, on cache lines other threads write too.
    pub(crate) fn flush(&mut self, idle: bool) {
        if self.touched.is_empty() || !(idle || self.flushed.elapsed() >= FLUSH_EVERY) {
            return;
        }
        for i in self.touched.drain(..) {
            let pending = &mut self.pending[i];
            pending.counter.inc_by(pending.count);
            pending.count = 0;
        }
        self.flushed = Instant::now();
    }

    /// `parts` joined ([`join_into`]) in the scratch buffer.
    fn join(&mut self, parts: &[&str]) -> &str {
        join_into(&mut self.scratch, parts);
        &self.scratch
    }
}

impl Sink for Tally {
    fn inc(&mut self, metrics: &Metrics, series: Series, labels: &[&str]) {
        // Each value hashed with the previous hash as seed: no joined copy to build.
        let hash = labels.iter().fold(self.key, |seed, value| {
            xxhash_rust::xxh3::xxh3_64_with_seed(value.as_bytes(), seed)
        });
        let key = (series, hash);
        let i = match self.index.get(&key) {
            Some(i) => *i,
            None => {
                let counter = metrics.series(series).with_label_values(labels);
                self.pending.push(Pending { counter, count: 0 });
                self.index.insert(key, self.pending.len() - 1);
                self.pending.len() - 1
            }
        };
        let pending = &mut self.pending[i];
        if pending.count == 0 {
            self.touched.push(i);
        }
        pending.count += 1;
    }

    fn first_sight(&mut self, key: &[&str]) -> bool {
        self.join(key);
        if self.seen.contains(self.scratch.as_str()) {
            return false;
        }
        self.seen.insert(self.scratch.clone());
        true
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.flush(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::metrics::Direct;
    use dunghan_proto::v1::dossier_event::Payload;
    use dunghan_proto::v1::{DossierEvent, Outcome, PublishStatus, SlaEvent, SlaEventKind};

    fn raised(kind: SlaEventKind, procedure: &str, outcome: Outcome) -> SlaEvent {
        SlaEvent {
            kind: kind as i32,
            agency_id: "so-a".into(),
            field: "Đầu tư".into(),
            procedure_code: procedure.into(),
            department_id: "phong-1".into(),
            step_id: "s1".into(),
            level: u32::from(kind == SlaEventKind::Escalation),
            outcome: outcome as i32,
            ..SlaEvent::default()
        }
    }

    fn events() -> Vec<SlaEvent> {
        use SlaEventKind as K;
        vec![
            raised(K::DeadlineComputed, "1.1", Outcome::Unspecified),
            raised(K::DeadlineComputed, "1.2", Outcome::Unspecified),
            raised(K::Escalation, "1.1", Outcome::Unspecified),
            raised(K::ApologyRequired, "1.1", Outcome::Unspecified),
            raised(K::Outcome, "1.1", Outcome::Late),
            raised(K::Outcome, "1.2", Outcome::Early),
        ]
    }

    fn step_started() -> DossierEvent {
        DossierEvent {
            payload: Some(Payload::StepStarted(dunghan_proto::v1::StepStarted {
                step_id: "s1".into(),
                department_id: "phong-1".into(),
                ..Default::default()
            })),
            ..DossierEvent::default()
        }
    }

    #[test]
    fn label_values_that_run_together_count_as_direct_counting_counts_them() {
        // prometheus' vectors hash the values run together (["ab", "c"] is ["a", "bc"]);
        // the tally, which hashes each value apart, must still add up to the same counts.
        let (direct, tallied) = (Metrics::new().unwrap(), Metrics::new().unwrap());
        let mut tally = Tally::new();
        for labels in [
            ["ab", "c"],
            ["a", "bc"],
            ["a", "bc"],
            ["", "abc"],
            ["x", ""],
        ] {
            Direct.inc(&direct, Series::Apologies, &labels);
            tally.inc(&tallied, Series::Apologies, &labels);
        }
        tally.flush(true);
        assert_eq!(tallied.render(), direct.render());
        assert!(direct.render().contains("department=\"x\""));
    }

    #[test]
    fn a_flushed_tally_shows_what_direct_counting_shows() {
        let (direct, tallied) = (Metrics::new().unwrap(), Metrics::new().unwrap());
        let mut tally = Tally::new();
        for _ in 0..3 {
            direct.observe_into(&mut Direct, &events());
            tallied.observe_into(&mut tally, &events());
            let step = step_started();
            direct.count_event(PublishStatus::Accepted, "", Some(&step));
            tallied.count_event_into(&mut tally, PublishStatus::Accepted, "", Some(&step));
            direct.count_event(PublishStatus::Rejected, "malformed", None);
            tallied.count_event_into(&mut tally, PublishStatus::Rejected, "malformed", None);
        }
        tally.flush(true);
        assert_eq!(tallied.render(), direct.render());
        let text = direct.render();
        assert!(text.contains(r#"dunghan_events_total{reason="",status="accepted"} 3"#));
        assert!(
            text.contains(r#"dunghan_raised_events_total{kind="deadline_computed",level="0"} 6"#)
        );
        assert!(text.contains(r#"dunghan_raised_events_total{kind="escalation",level="1"} 3"#));
    }

    #[test]
    fn ratings_are_counted_by_level_from_zero() {
        let metrics = Metrics::new().unwrap();
        let series = |level: &str, n: u32| {
            format!(r#"dunghan_satisfaction_ratings_total{{level="{level}"}} {n}"#)
        };
        let text = metrics.render();
        for level in ["very_satisfied", "satisfied", "acceptable", "dissatisfied"] {
            assert!(text.contains(&series(level, 0)), "{text}");
        }
        assert!(!text.contains("unspecified"), "{text}");
        let rated = DossierEvent {
            payload: Some(Payload::CitizenRated(dunghan_proto::v1::CitizenRated {
                level: dunghan_proto::v1::SatisfactionLevel::Acceptable as i32,
                ..Default::default()
            })),
            ..DossierEvent::default()
        };
        let mut tally = Tally::new();
        metrics.count_event_into(&mut tally, PublishStatus::Accepted, "", Some(&rated));
        tally.flush(true);
        let text = metrics.render();
        assert!(text.contains(&series("acceptable", 1)), "{text}");
        assert!(text.contains(&series("satisfied", 0)), "{text}");
    }

    #[test]
    fn counts_wait_for_the_flush_but_zero_series_exist_at_once() {
        let metrics = Metrics::new().unwrap();
        let mut tally = Tally::new();
        metrics.observe_into(&mut tally, &events()[..1]);
        let received = |n: u32| {
            format!(
                r#"dunghan_dossiers_received_total{{agency="so-a",channel="unspecified",field="Đầu tư"}} {n}"#
            )
        };
        let text = metrics.render();
        // Not yet counted (the series exists, at zero)…
        assert!(text.contains(&received(0)), "{text}");
        // …and the outcome series of the received dossier exist, at zero.
        assert!(text.contains(
            r#"dunghan_dossiers_finished_total{agency="so-a",channel="unspecified",field="Đầu tư",outcome="on_time"} 0"#
        ), "{text}");
        tally.flush(false); // busy and just created: too early
        assert!(metrics.render().contains(&received(0)));
        tally.flush(true);
        assert!(metrics.render().contains(&received(1)));
        // Dropping a tally flushes what it still holds.
        metrics.observe_into(&mut tally, &events()[..1]);
        drop(tally);
        assert!(metrics.render().contains(&received(2)));
    }
}
