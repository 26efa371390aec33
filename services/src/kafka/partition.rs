//! One input partition's state in Kafka mode: its engine, each dossier's applied history
//! (what the changelog holds), its stream time and the output ids to suppress after a
//! restore. Pure: records, times and histories come in as arguments, so every rule of the
//! exactly-once argument (README "Kafka mode") is unit-tested without a broker.

use std::sync::Arc;

use dunghan_core::{Engine, Kind, Raised};
use dunghan_proto::v1::dossier_event::Payload;
use dunghan_proto::v1::PublishStatus;
use dunghan_proto::v1::{DossierEvent, PartitionCheckpoint};
use prost::Message;

use super::codec;
use super::history::History;
use crate::convert::to_event;

/// Each dossier's applied history by dossier id. hashbrown's map for
/// `get_key_value_mut` (an event of a known dossier reuses the id its history is keyed
/// by) and its default hasher, foldhash: keyed at random, as ids come from publishers, and
/// about as fast as the Fx hashing it replaced (a restore inserts every dossier twice, and
/// std's SipHash was about a tenth of a restore's profile: BENCHMARKS.md).
pub(crate) type Histories = hashbrown::HashMap<Arc<str>, History>;
/// Ids to suppress (output written after the checkpoint).
pub(crate) type Ids = hashbrown::HashSet<String>;

/// A checkpoint scans every history instead of looking up the changed ones when at least
/// one in this many changed (the list of changed ones counts a dossier at most twice).
const SCAN_WHEN_CHANGED: usize = 4;

/// A changelog record: dossier id (or [`CHECKPOINT_KEY`]) and value; `None` = tombstone.
pub(crate) type ChangelogRecord = (String, Option<Vec<u8>>);

/// Changelog key of a partition's checkpoint (dossier ids never start with NUL).
pub(crate) const CHECKPOINT_KEY: &str = "\u{0}checkpoint";

/// What one input record did.
#[derive(Debug, Default)]
pub(crate) struct Processed {
    /// Raised events to write (those already in the output are left out).
    pub(crate) raised: Vec<Raised>,
    /// Why the record goes to the dead-letter topic: (reason code, message).
    pub(crate) dead_letter: Option<(String, String)>,
    /// Accepted, duplicate or rejected (for the events metric); `None` when the record
    /// was applied before a crash and is skipped.
    pub(crate) status: Option<PublishStatus>,
    /// What the metrics read of an accepted event: its payload, if it handed a step
    /// over, rated the service or issued an apology (the rest is left empty).
    pub(crate) accepted: Option<DossierEvent>,
}

/// One partition of the input topic, as its owner holds it.
#[derive(Debug)]
pub(crate) struct Partition {
    pub(crate) id: i32,
    engine: Engine,
    histories: Histories,
    /// Dossiers whose history changed since the last checkpoint, each listed when its
    /// history is first marked unsaved (one forgotten since stays listed, and one
    /// received again after being forgotten is listed twice: the checkpoint skips both).
    unsaved: Vec<Arc<str>>,
    /// Ended dossiers the engine forgot since the last checkpoint (changelog tombstones).
    forgotten: Vec<Arc<str>>,
    /// The next input offset to process (records below it were applied).
    pub(crate) next_offset: i64,
    /// Rules due at or before it have fired.
    pub(crate) stream_time: i64,
    /// End of this partition's output at the last checkpoint.
    pub(crate) output_end: i64,
    /// Ids already in the output past `output_end` when the partition was restored.
    suppress: Ids,
    /// The protobuf form of the JSON input being applied (reused from record to record).
    encoded: Vec<u8>,
    /// Something to checkpoint: input consumed or output written.
    pub(crate) changed: bool,
    /// Its end was reached and no record applied since: its stream time follows the wall
    /// clock, and it is not catching up (`[kafka] checkpoint_catch_up_interval_ms`).
    pub(crate) at_end: bool,
}

/// Re-applies a dossier's history to `engine` as it was applied live: before each event,
/// the dossier's rules due by the stream time of that moment fire; each event is judged
/// against the present it was judged against then. What it raises goes to `out`, and each
/// event decoded to `events` if given; returns the latest present of the history
/// (`i64::MIN` for none).
pub(crate) fn apply_history(
    engine: &mut Engine,
    dossier: &str,
    history: &History,
    out: &mut Vec<Raised>,
    mut events: Option<&mut Vec<DossierEvent>>,
) -> anyhow::Result<i64> {
    let mut present = i64::MIN;
    for entry in history.entries() {
        let entry = entry?;
        engine.advance_dossier(dossier, entry.stream_time, out);
        engine.restore_present(entry.present);
        present = present.max(entry.present);
        let event = DossierEvent::decode(entry.event.as_slice())?;
        if let Some(events) = events.as_deref_mut() {
            events.push(event.clone());
        }
        let event = to_event(event).map_err(|why| anyhow::anyhow!("changelog event: {why}"))?;
        engine.apply(&event, out);
    }
    Ok(present)
}

impl Partition {
    /// A partition nobody has processed yet.
    pub(crate) fn new(id: i32, mut engine: Engine) -> Partition {
        engine.track_forgotten();
        Partition {
            id,
            engine,
            histories: Histories::default(),
            unsaved: Vec::new(),
            forgotten: Vec::new(),
            next_offset: 0,
            stream_time: i64::MIN,
            output_end: 0,
            suppress: Ids::default(),
            encoded: Vec::new(),
            changed: false,
            at_end: false,
        }
    }

    /// Rebuilds a partition from its changelog (latest history per dossier and the
    /// latest checkpoint) and the ids found in its output after the checkpoint. What the
    /// re-application raises was written before the checkpoint (or is in `suppress`), so it
    /// is dropped.
    pub(crate) fn restore(
        id: i32,
        engine: Engine,
        mut histories: Histories,
        checkpoint: Option<PartitionCheckpoint>,
        suppress: Ids,
    ) -> anyhow::Result<Partition> {
        let mut p = Partition::new(id, engine);
        // Sized once for every dossier to come, instead of growing table by table.
        p.engine.reserve(histories.len());
        let mut scratch = Vec::new();
        let mut present = i64::MIN;
        // Each history checked as it is applied: one pass over a million of them, not two
        // (the first touch of each is a cache miss).
        for (dossier, history) in &mut histories {
            history
                .check()
                .map_err(|e| anyhow::anyhow!("changelog history of {dossier}: {e}"))?;
            present = present.max(apply_history(
                &mut p.engine,
                dossier,
                history,
                &mut scratch,
                None,
            )?);
            scratch.clear();
        }
        p.engine.restore_present(present);
        if let Some(c) = checkpoint {
            p.next_offset = c.next_offset;
            p.stream_time = c.stream_time;
            p.output_end = c.output_end;
            if c.stream_time != i64::MIN {
                p.engine.advance_to(c.stream_time, &mut scratch);
            }
        }
        // Dossiers forgotten while re-applying were forgotten before: their tombstones
        // are already written, or will be by the next checkpoint (harmless twice).
        p.forgotten = p.engine.take_forgotten();
        p.histories = histories;
        for id in &p.forgotten {
            p.histories.remove(id);
        }
        p.suppress = suppress;
        Ok(p)
    }

    /// Applies the input record at `offset` (stamped `present`, Unix s, by the broker or
    /// producer). `key` is the record key (the dossier id), `payload` protobuf or JSON.
    pub(crate) fn process(
        &mut self,
        offset: i64,
        present: i64,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        content_type: Option<&str>,
    ) -> Processed {
        self.next_offset = offset + 1;
        self.changed = true;
        self.at_end = false;
        self.engine.set_present(present);
        let mut raised = Vec::new();
        let mut processed = Processed::default();
        // The decoded event is moved into the engine's form; kept of it are its protobuf
        // (the changelog's form: a protobuf input is kept as it came) and what the metrics
        // read (the payload of a step handed over, a rating or an issued apology).
        let encoded = &mut self.encoded;
        encoded.clear();
        let decoded =
            codec::decode(payload.unwrap_or_default(), content_type).and_then(|(wire, json)| {
                if json {
                    wire.encode_raw(encoded);
                }
                let counted = match &wire.payload {
                    Some(
                        Payload::StepStarted(_)
                        | Payload::CitizenRated(_)
                        | Payload::ApologyIssued(_),
                    ) => wire.payload.clone(),
                    _ => None,
                };
                to_event(wire).map(|event| (event, counted, json))
            });
        let (event, counted, json) = match decoded {
            Ok(decoded) => decoded,
            Err(why) => {
                let dossier = key.and_then(|k| std::str::from_utf8(k).ok()).unwrap_or("");
                let at = format!("kafka:{}/{offset}", self.id);
                raised.push(self.engine.reject_malformed(dossier, &at, why.clone()));
                processed.dead_letter = Some(("malformed".into(), why));
                processed.status = Some(PublishStatus::Rejected);
                processed.raised = self.output(raised);
                return processed;
            }
        };
        // Applied before a crash (its dossier's history already has it or a later record).
        let dossier = event.dossier_id.as_str();
        let known = self.histories.get_key_value_mut(dossier);
        if known
            .as_ref()
            .and_then(|(_, history)| history.last_offset())
            .is_some_and(|last| last >= offset)
        {
            return processed;
        }
        let duplicates = self.engine.duplicates();
        let stream_before = self.stream_time;
        self.engine.apply(&event, &mut raised);
        let rejected = raised
            .iter()
            .find(|r| r.kind() == Kind::Rejected && r.event_id == event.event_id);
        processed.status = Some(if self.engine.duplicates() > duplicates {
            PublishStatus::Duplicate
        } else if let Some(r) = rejected {
            let code = r.reject_reason.map_or("invalid", |w| w.as_str()).to_owned();
            processed.dead_letter = Some((code, r.reason.to_string()));
            PublishStatus::Rejected
        } else {
            self.stream_time = self.stream_time.max(event.occurred_at);
            PublishStatus::Accepted
        });
        if processed.status != Some(PublishStatus::Duplicate) && self.engine.knows(dossier) {
            let event = match payload {
                Some(bytes) if !json => bytes,
                _ => &self.encoded,
            };
            let present = self.engine.present();
            let history = match known {
                Some((id, history)) => {
                    if history.mark_unsaved() {
                        self.unsaved.push(id.clone());
                    }
                    history
                }
                None => {
                    let id: Arc<str> = dossier.into();
                    self.unsaved.push(id.clone());
                    let history = self.histories.entry(id).or_default();
                    history.mark_unsaved();
                    history
                }
            };
            history.push(offset, present, stream_before, event);
        }
        if processed.status == Some(PublishStatus::Accepted) {
            processed.accepted = Some(DossierEvent {
                payload: counted,
                ..DossierEvent::default()
            });
        }
        // Every rule due by the stream time fires now, also those of a dossier whose
        // events arrive late: so a checkpoint's stream time always means "fired through",
        // which is what a restore reproduces.
        if self.stream_time != i64::MIN {
            self.engine.advance_to(self.stream_time, &mut raised);
        }
        self.collect_forgotten();
        processed.raised = self.output(raised);
        processed
    }

    /// Moves stream time to the wall clock (the consumer has caught up with this
    /// partition) and returns what fired. A partition that has never had a record keeps
    /// no stream time, so a first backfill of old events is judged by event time.
    pub(crate) fn advance(&mut self, now: i64) -> Vec<Raised> {
        if now <= self.stream_time || self.stream_time == i64::MIN {
            return Vec::new();
        }
        self.stream_time = now;
        let mut raised = Vec::new();
        self.engine.advance_to(now, &mut raised);
        self.collect_forgotten();
        if !raised.is_empty() || !self.forgotten.is_empty() {
            self.changed = true;
        }
        self.output(raised)
    }

    fn collect_forgotten(&mut self) {
        for id in self.engine.take_forgotten() {
            self.histories.remove(&id);
            self.forgotten.push(id);
        }
    }

    /// What was raised, minus what a previous owner already wrote.
    fn output(&mut self, mut raised: Vec<Raised>) -> Vec<Raised> {
        if !self.suppress.is_empty() {
            raised.retain(|r| !self.suppress.remove(r.id.as_str()));
        }
        raised
    }

    /// The changelog records since the last checkpoint: (key, value; `None` = tombstone),
    /// the checkpoint last. `output_end` is where this partition's output is known to end
    /// now. Empty when nothing changed and the output known delivered has not grown since
    /// the last checkpoint: one taken while output was in flight is followed by one more
    /// once it is delivered, so that a restore after a quiet spell reads no output tail.
    pub(crate) fn take_changelog(&mut self, output_end: i64) -> Vec<ChangelogRecord> {
        if !self.changed && output_end <= self.output_end {
            return Vec::new();
        }
        let mut records = Vec::with_capacity(self.unsaved.len() + self.forgotten.len() + 1);
        // Tombstones first: a dossier forgotten and then received again since the last
        // checkpoint keeps its new history.
        for id in self.forgotten.drain(..) {
            records.push((String::from(&*id), None));
        }
        let record = |id: &str, history: &History| (id.to_owned(), Some(history.bytes().to_vec()));
        // After a catch-up most histories changed: one pass over the map, in its memory
        // order, beats looking each changed one up (a cache miss or two each).
        if self.unsaved.len() >= self.histories.len() / SCAN_WHEN_CHANGED {
            self.unsaved.clear();
            for (id, history) in &mut self.histories {
                if history.take_unsaved() {
                    records.push(record(id, history));
                }
            }
        } else {
            for id in self.unsaved.drain(..) {
                if let Some(history) = self.histories.get_mut(&id) {
                    if history.take_unsaved() {
                        records.push(record(&id, history));
                    }
                }
            }
        }
        self.output_end = self.output_end.max(output_end);
        let checkpoint = PartitionCheckpoint {
            next_offset: self.next_offset,
            stream_time: self.stream_time,
            output_end: self.output_end,
        };
        records.push((CHECKPOINT_KEY.to_owned(), Some(checkpoint.encode_to_vec())));
        self.changed = false;
        records
    }

    /// About how many records the next checkpoint takes (a dossier changed, forgotten
    /// and received again counts twice).
    pub(crate) fn unsaved(&self) -> usize {
        self.unsaved.len() + self.forgotten.len()
    }

    /// A dossier's applied history, if this partition holds it.
    pub(crate) fn history(&self, dossier: &str) -> Option<History> {
        self.histories.get(dossier).cloned()
    }

    /// Every history of the partition (for rates).
    pub(crate) fn histories(&self) -> Vec<(Arc<str>, History)> {
        self.histories
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use dunghan_core::{Catalog, EngineConfig};

    const CATALOG: &str = include_str!("../../../tests/scenarios/catalog.toml");
    const EVENTS: &str = include_str!("../../../tests/scenarios/apology-overdue-step-ladder.jsonl");

    fn engine() -> Engine {
        let catalog = Catalog::parse(CATALOG, "catalog.toml").unwrap();
        let calendars = crate::files::CalendarSpec::default().build().unwrap();
        Engine::new(catalog, calendars, EngineConfig::default())
    }

    fn records() -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = EVENTS
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.as_bytes().to_vec())
            .collect();
        // Bad input in the middle, and a duplicate of the first event.
        out.insert(2, b"{not json".to_vec());
        out.insert(3, out[0].clone());
        out
    }

    /// Everything the scenario raises (for tests of the raised events' encoding).
    pub(crate) fn scenario_raised() -> Vec<Raised> {
        let mut p = Partition::new(0, engine());
        let mut raised = Vec::new();
        for (offset, r) in records().iter().enumerate() {
            raised.extend(
                p.process(offset as i64, NOW, Some(b"D"), Some(r), None)
                    .raised,
            );
        }
        raised.extend(p.advance(END));
        raised
    }

    /// Runs records `from..` through `p`, then the wall clock to `end`; returns raised ids.
    fn run(p: &mut Partition, records: &[Vec<u8>], from: usize, end: i64) -> Vec<String> {
        let mut ids = run_until_from(p, records, from, records.len());
        ids.extend(p.advance(end).into_iter().map(|e| e.id));
        ids
    }

    const NOW: i64 = 1_795_000_000; // 2026-11-18
    const END: i64 = 1_800_000_000; // 2027-01

    #[test]
    fn a_restore_from_any_checkpoint_regenerates_exactly_what_is_missing() {
        let records = records();
        let mut clean = Partition::new(0, engine());
        let all = run(&mut clean, &records, 0, END);
        assert!(all.len() > 5, "the scenario raises events: {all:?}");
        let unique: std::collections::HashSet<&String> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "ids are unique");

        for crash_at in 1..records.len() {
            for written_after in [0, 1, 3] {
                // The first owner processes up to `crash_at`, checkpoints there, goes on
                // for a few records whose output is written, then dies before the next
                // checkpoint (its changelog writes for those records may or may not land).
                let mut first = Partition::new(0, engine());
                let mut written = run_until(&mut first, &records, crash_at);
                let changelog = first.take_changelog(written.len() as i64);
                let (histories, checkpoint) = fold(&changelog);
                let upto = (crash_at + written_after).min(records.len());
                let after = run_until_from(&mut first, &records, crash_at, upto);
                written.extend(after.iter().cloned());
                let late = first.take_changelog(written.len() as i64);
                for landed in [false, true] {
                    let (mut h, c) = (histories.clone(), checkpoint);
                    if landed {
                        // The dossier histories landed, the checkpoint did not.
                        h.extend(fold(&late).0);
                    }
                    let out_end = c.as_ref().map_or(0, |c| c.output_end) as usize;
                    let suppress = written[out_end..].iter().cloned().collect();
                    let mut second = Partition::restore(0, engine(), h, c, suppress).unwrap();
                    let from = second.next_offset as usize;
                    let mut output = written.clone();
                    output.extend(run(&mut second, &records, from, END));
                    assert_eq!(
                        output, all,
                        "crash at {crash_at}, {written_after} more written, histories landed: {landed}"
                    );
                }
            }
        }
    }

    fn run_until(p: &mut Partition, records: &[Vec<u8>], upto: usize) -> Vec<String> {
        run_until_from(p, records, 0, upto)
    }

    fn run_until_from(p: &mut Partition, r: &[Vec<u8>], from: usize, upto: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for (offset, rec) in r.iter().enumerate().take(upto).skip(from) {
            let done = p.process(offset as i64, NOW, Some(b"D"), Some(rec), None);
            ids.extend(done.raised.into_iter().map(|e| e.id));
        }
        ids
    }

    type Folded = (Histories, Option<PartitionCheckpoint>);

    /// The changelog as a restore reads it: the latest value per key.
    fn fold(records: &[(String, Option<Vec<u8>>)]) -> Folded {
        let mut histories = Histories::default();
        let mut checkpoint = None;
        for (key, value) in records {
            if key == CHECKPOINT_KEY {
                checkpoint = value
                    .as_ref()
                    .map(|v| PartitionCheckpoint::decode(v.as_slice()).unwrap());
            } else if let Some(v) = value {
                let h = History::from_bytes(v.clone()).unwrap();
                histories.insert(Arc::from(key.as_str()), h);
            } else {
                histories.remove(key.as_str());
            }
        }
        (histories, checkpoint)
    }

    #[test]
    fn a_dossier_received_again_after_it_was_forgotten_keeps_its_new_history() {
        let catalog = Catalog::parse(CATALOG, "catalog.toml").unwrap();
        let calendars = crate::files::CalendarSpec::default().build().unwrap();
        let day = EngineConfig {
            retain_ended_secs: 86_400,
            ..EngineConfig::default()
        };
        let engine = || Engine::new(catalog.clone(), calendars.clone(), day.clone());
        let line = |id: &str, dossier: &str, at: &str, payload: &str| {
            format!(r#"{{"eventId":"{id}","dossierId":"{dossier}","occurredAt":"{at}",{payload}}}"#)
        };
        let received = r#""received":{"procedureCode":"P5","agencyId":"so-a"}"#;
        let records = [
            line("r", "D", "2026-10-05T10:00:00+07:00", received),
            line(
                "w",
                "D",
                "2026-10-05T11:00:00+07:00",
                r#""withdrawn":{"reason":"x"}"#,
            ),
            // Three days on: D, ended for more than a day, is forgotten.
            line("e", "E", "2026-10-08T10:00:00+07:00", received),
            // And received again, a new dossier under the same id.
            line("r2", "D", "2026-10-08T12:00:00+07:00", received),
        ];
        let mut p = Partition::new(0, engine());
        let mut changelog = Vec::new();
        for (offset, r) in records.iter().enumerate() {
            let done = p.process(offset as i64, NOW, None, Some(r.as_bytes()), None);
            assert_eq!(done.status, Some(PublishStatus::Accepted), "{r}");
            if offset == 1 {
                changelog.extend(p.take_changelog(0));
            }
        }
        changelog.extend(p.take_changelog(0));
        let (histories, checkpoint) = fold(&changelog);
        let d = histories
            .get("D")
            .expect("D's new history survives its tombstone");
        assert_eq!(d.last_offset(), Some(3));
        assert_eq!(d.entries().count(), 1, "only the new dossier's event");
        let restored = Partition::restore(0, engine(), histories, checkpoint, Ids::default());
        assert!(restored.unwrap().engine().knows("D"));
    }

    #[test]
    fn a_checkpoint_takes_exactly_the_histories_changed_since_the_last_few_or_most() {
        let mut p = Partition::new(0, engine());
        let mut offset = 0;
        let mut event = |p: &mut Partition, dossier: usize, payload: &str| {
            let r = format!(
                r#"{{"eventId":"e{offset}","dossierId":"D{dossier}","occurredAt":"2026-10-05T10:00:00+07:00",{payload}}}"#
            );
            let done = p.process(offset, NOW, None, Some(r.as_bytes()), None);
            assert_eq!(done.status, Some(PublishStatus::Accepted), "{r}");
            offset += 1;
        };
        let received = r#""received":{"procedureCode":"P5","agencyId":"so-a"}"#;
        for d in 0..40 {
            event(&mut p, d, received);
        }
        let first = p.take_changelog(0);
        assert_eq!(first.len(), 41, "40 histories and the checkpoint");
        // A step started in one dossier of 40, then in 30 of them: the first checkpoint
        // looks the changed one up, the second takes them in one pass over the map.
        let started = r#""stepStarted":{"stepId":"xu-ly","departmentId":"phong-a"}"#;
        for changed in [vec![7], (10..40).collect::<Vec<_>>()] {
            for d in &changed {
                event(&mut p, *d, started);
            }
            let records = p.take_changelog(0);
            let (last, histories) = records.split_last().unwrap();
            assert_eq!(last.0, CHECKPOINT_KEY);
            let mut keys: Vec<_> = histories.iter().map(|(k, _)| k.clone()).collect();
            keys.sort_by_key(|k| k[1..].parse::<usize>().unwrap());
            let expected: Vec<_> = changed.iter().map(|d| format!("D{d}")).collect();
            assert_eq!(keys, expected);
            for (key, value) in histories {
                let held = p.history(key).unwrap();
                assert_eq!(value.as_deref(), Some(held.bytes()), "{key}");
            }
            assert_eq!(p.take_changelog(0), Vec::new(), "nothing changed since");
        }
    }

    #[test]
    fn a_checkpoint_taken_with_output_in_flight_is_followed_by_one_with_its_end() {
        let mut p = Partition::new(0, engine());
        let raised = run_until(&mut p, &records(), 3).len() as i64;
        assert!(raised > 1, "the scenario's first records raise events");
        // Taken while the last of them is still in flight: its end is one short.
        let (_, first) = fold(&p.take_changelog(raised - 1));
        assert_eq!(first.unwrap().output_end, raised - 1);
        // Nothing applied since, but the output is now known delivered.
        let records = p.take_changelog(raised);
        assert_eq!(records.len(), 1, "the checkpoint alone");
        let (_, second) = fold(&records);
        assert_eq!(second.unwrap().output_end, raised);
        assert_eq!(
            p.take_changelog(raised),
            Vec::new(),
            "then nothing, until more"
        );
    }

    #[test]
    fn bad_records_go_to_the_dead_letter_with_a_reason_and_the_partition_goes_on() {
        let mut p = Partition::new(3, engine());
        let bad = p.process(0, NOW, Some(b"D-9"), Some(b"\xff\x00garbage"), None);
        let (code, why) = bad.dead_letter.expect("dead letter");
        assert_eq!(code, "malformed");
        assert!(!why.is_empty());
        assert_eq!(bad.raised.len(), 1, "a REJECTED event too");
        assert_eq!(bad.raised[0].id, "D-9:rejected:kafka:3/0");
        let unknown = br#"{"eventId":"x1","dossierId":"NOPE","occurredAt":"2026-09-01T09:00:00+07:00","resultReady":{}}"#;
        let refused = p.process(1, NOW, None, Some(unknown), None);
        assert_eq!(refused.dead_letter.unwrap().0, "unknown_dossier");
        let first = EVENTS.lines().next().unwrap().as_bytes();
        let ok = p.process(2, NOW, None, Some(first), None);
        assert_eq!(ok.status, Some(PublishStatus::Accepted));
        assert!(ok.dead_letter.is_none());
        let proto = serde_json::from_slice::<DossierEvent>(first)
            .unwrap()
            .encode_to_vec();
        let again = p.process(3, NOW, None, Some(&proto), None);
        assert_eq!(
            again.status,
            Some(PublishStatus::Duplicate),
            "the protobuf form of the same event is the same event"
        );
        assert_eq!(p.next_offset, 4);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Fuzz: random bytes (as JSON-looking or binary payloads) anywhere in a stream go
        /// to the dead letters, never panic, and change nothing the valid events raise.
        #[test]
        fn garbage_anywhere_is_dead_lettered_and_changes_nothing_else(
            noise in proptest::collection::vec(
                (0usize..12, proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80), proptest::prelude::any::<bool>()),
                0..12,
            )
        ) {
            let valid = records();
            let mut clean = Partition::new(0, engine());
            let want: Vec<String> = run(&mut clean, &valid, 0, END)
                .into_iter()
                .filter(|id| !id.contains(":rejected:"))
                .collect();
            let mut mixed: Vec<(bool, Vec<u8>)> = valid.iter().map(|r| (false, r.clone())).collect();
            for (at, mut bytes, json) in noise {
                if json {
                    bytes.insert(0, b'{');
                }
                mixed.insert(at.min(mixed.len()), (true, bytes));
            }
            let mut p = Partition::new(0, engine());
            let mut got = Vec::new();
            for (offset, (is_noise, r)) in mixed.iter().enumerate() {
                let done = p.process(offset as i64, NOW, None, Some(r), None);
                if *is_noise {
                    proptest::prop_assert!(done.dead_letter.is_some(), "noise at {offset} not dead-lettered");
                }
                got.extend(done.raised.into_iter().map(|e| e.id));
            }
            got.extend(p.advance(END).into_iter().map(|e| e.id));
            got.retain(|id| !id.contains(":rejected:"));
            proptest::prop_assert_eq!(got, want);
        }
    }
}
