//! Fuzzing the input decoders (protobuf and proto3 JSON) and the engine behind a partition
//! with a seeded stream of valid, mutated and garbage records (`DUNGHAN_FUZZ_CASES`
//! records, 20 000 by default; README "Fault injection" runs 1 000 000): no panic, every
//! record applied or dead-lettered with a reason, and rejected records change nothing
//! (each applied record gets the same status and the raised events are the same, field by
//! field, with the noise and without it).

use chrono::NaiveDate;
use dunghan_core::{Catalog, Engine, EngineConfig, Kind, Raised};
use dunghan_proto::v1::{self, dossier_event::Payload, DossierEvent, PublishStatus};
use prost::Message;

use super::codec;
use super::partition::Partition;
use crate::loadgen::province::{Province, Rng};
use crate::loadgen::sim::{arrivals, Events};

/// Every record is processed at this broker time (2026-11-18).
const NOW: i64 = 1_795_000_000;
/// The wall clock both partitions are advanced to at the end (2027-01).
const END: i64 = 1_800_000_000;
const SEED: u64 = 20_261_122;

/// How many input records: `DUNGHAN_FUZZ_CASES`, else 20 000.
fn cases() -> usize {
    std::env::var("DUNGHAN_FUZZ_CASES").map_or(20_000, |v| {
        v.replace('_', "")
            .parse()
            .expect("DUNGHAN_FUZZ_CASES is a number")
    })
}

/// One input record as a producer would send it.
#[derive(Debug, Clone)]
struct Input {
    key: Vec<u8>,
    payload: Vec<u8>,
    content_type: Option<&'static str>,
    /// What it is made to be: a valid event, a byte mutant (anything may happen), or
    /// input the partition must reject.
    class: Class,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Class {
    Valid,
    Mutant,
    Invalid,
}

/// The same event in protobuf or proto3 JSON, with or without a content type.
fn encode(event: &DossierEvent, rng: &mut Rng, class: Class) -> Input {
    // An impossible timestamp has no JSON form: protobuf then.
    let json = serde_json::to_vec(event).ok();
    let (payload, content_type) = match (rng.below(4), json) {
        (2, Some(json)) => (json, Some(codec::JSON)),
        (3, Some(json)) => (json, None),
        (1, _) => (event.encode_to_vec(), Some(codec::PROTOBUF)),
        _ => (event.encode_to_vec(), None),
    };
    Input {
        key: event.dossier_id.clone().into_bytes(),
        payload,
        content_type,
        class,
    }
}

/// A valid event broken so the partition must refuse it (a missing or impossible field,
/// an unknown procedure, a dossier nobody received, a lying content type).
fn invalid(event: &DossierEvent, rng: &mut Rng, n: usize) -> Input {
    let mut e = event.clone();
    e.event_id = format!("{}~bad{n}", e.event_id);
    match rng.below(8) {
        0 => e.event_id = " ".into(),
        1 => e.dossier_id.clear(),
        2 => e.occurred_at = None,
        3 => {
            if let Some(t) = e.occurred_at.as_mut() {
                t.nanos = 1_000_000_000 + rng.below(1000) as i32;
            }
        }
        4 => e.payload = None,
        5 => {
            e.payload = Some(Payload::Received(v1::DossierReceived {
                procedure_code: format!("NO-SUCH-PROCEDURE-{n}"),
                agency_id: "so-a".into(),
                ..Default::default()
            }))
        }
        6 => {
            e.dossier_id = format!("NEVER-RECEIVED-{n}");
            e.payload = Some(Payload::ResultReady(Default::default()));
        }
        _ => {
            // Protobuf said to be JSON (JSON said to be protobuf is JSON by its first byte).
            return Input {
                key: e.dossier_id.clone().into_bytes(),
                payload: e.encode_to_vec(),
                content_type: Some(codec::JSON),
                class: Class::Invalid,
            };
        }
    }
    encode(&e, rng, Class::Invalid)
}

/// A valid record with bytes flipped, cut or inserted: it may still decode. Not with
/// another event id, though: the id is the idempotency key, and the engine remembers a
/// refused event's id so that its redelivery is a duplicate; a corrupted id that happens
/// to be a later event's would spend that event's id (as the contract says it should).
fn mutant(valid: &Input, rng: &mut Rng) -> Input {
    let id = |i: &Input| codec::decode(&i.payload, i.content_type).map(|(e, _)| e.event_id);
    let source = id(valid).ok();
    loop {
        let m = flipped(valid, rng);
        match id(&m) {
            Ok(other) if Some(&other) != source.as_ref() => continue,
            _ => return m,
        }
    }
}

fn flipped(valid: &Input, rng: &mut Rng) -> Input {
    let mut m = valid.clone();
    m.class = Class::Mutant;
    let len = m.payload.len().max(1) as u64;
    for _ in 0..1 + rng.below(3) {
        match rng.below(3) {
            0 if !m.payload.is_empty() => {
                let i = rng.below(m.payload.len() as u64) as usize;
                m.payload[i] ^= 1 << rng.below(8);
            }
            1 => m.payload.truncate(rng.below(len) as usize),
            _ => {
                let i = rng.below(m.payload.len() as u64 + 1) as usize;
                m.payload.insert(i, rng.below(256) as u8);
            }
        }
    }
    m
}

/// Bytes that are no event at all: random, JSON-looking, empty, or a key alone.
fn garbage(rng: &mut Rng, key: &[u8]) -> Input {
    let len = rng.below(120) as usize;
    let mut payload: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
    let content_type = match rng.below(4) {
        0 => {
            payload.insert(0, b'{');
            None
        }
        1 => {
            payload = br#"{"eventId":"g","dossierId":"#.to_vec();
            Some(codec::JSON)
        }
        2 => Some(codec::PROTOBUF),
        _ => None,
    };
    Input {
        key: key.to_vec(),
        payload,
        content_type,
        class: Class::Invalid,
    }
}

/// Valid events of a generated province (the generated catalog), interleaved with their
/// mutants, invalid variants, garbage and exact duplicates: `n` records in all.
fn inputs(n: usize) -> (Catalog, Vec<Input>) {
    let province = Province::generate(SEED, 6, 40);
    let toml = province.catalog_toml(SEED);
    let catalog = Catalog::parse(&toml, "generated.toml").expect("the generated catalog");
    let cal = dunghan_calendar::CalendarBuilder::national()
        .years(2024, 2028)
        .build()
        .unwrap();
    let start = NaiveDate::from_ymd_opt(2025, 3, 3).unwrap();
    // Lines per dossier are about ten: enough dossiers for n records.
    let dossiers = (n / 8 + 10) as u64;
    let times = arrivals(&cal, SEED, start, 120, dossiers).unwrap();
    let mut lines = Events::new(&province, &cal, SEED, times);
    let mut rng = Rng::stream(SEED, 1);
    let mut out: Vec<Input> = Vec::with_capacity(n);
    let mut valid: Vec<Input> = Vec::new();
    while out.len() < n {
        let roll = rng.below(100);
        let last = valid.last().cloned();
        match (roll, last) {
            (0..=59, _) | (_, None) => {
                let Some(line) = lines.next() else { break };
                let event: DossierEvent = serde_json::from_str(&line.json).unwrap();
                // The decoders agree on both forms of a valid event, with or without header.
                let input = encode(&event, &mut rng, Class::Valid);
                let (decoded, _) = codec::decode(&input.payload, input.content_type).unwrap();
                assert_eq!(decoded, event, "{}", line.json);
                assert_eq!(line.dossier_id, event.dossier_id);
                valid.push(input.clone());
                out.push(input);
            }
            (60..=74, Some(v)) => out.push(mutant(&v, &mut rng)),
            (75..=86, Some(v)) => {
                let (event, _) = codec::decode(&v.payload, v.content_type).unwrap();
                out.push(invalid(&event, &mut rng, out.len()));
            }
            (87..=94, Some(v)) => out.push(garbage(&mut rng, &v.key)),
            (_, Some(_)) => {
                // An exact repeat of a recent valid record (at-least-once delivery; a
                // dossier ended 90 days before is forgotten, and its repeats refused).
                let back = rng.below(valid.len().min(200) as u64) as usize;
                let i = valid.len() - 1 - back;
                out.push(valid[i].clone());
            }
        }
    }
    (catalog, out)
}

fn partition(catalog: &Catalog) -> Partition {
    let calendars = crate::files::CalendarSpec::default().build().unwrap();
    Partition::new(
        0,
        Engine::new(catalog.clone(), calendars, EngineConfig::default()),
    )
}

/// Counts of what the partition did with the records.
#[derive(Debug, Default)]
struct Tally {
    accepted: usize,
    duplicate: usize,
    rejected: usize,
    mutants_accepted: usize,
}

#[test]
fn any_input_is_applied_or_dead_lettered_and_rejected_input_changes_nothing() {
    let n = cases();
    let began = std::time::Instant::now();
    let (catalog, inputs) = inputs(n);
    assert_eq!(inputs.len(), n, "the generated province has enough events");
    // The hand-written JSON path decodes what it decodes as pbjson does.
    for input in &inputs {
        let text = std::str::from_utf8(&input.payload).ok();
        if let Some((text, fast)) = text.and_then(|t| Some((t, dunghan_proto::json::decode(t)?))) {
            let full: DossierEvent = serde_json::from_str(text).expect("pbjson reads it too");
            assert_eq!(fast, full, "{text}");
        }
    }
    // Everything, interleaved, through one partition.
    let mut p = partition(&catalog);
    let mut tally = Tally::default();
    let mut kept: Vec<(usize, &Input, PublishStatus)> = Vec::with_capacity(n);
    let mut noisy: Vec<Raised> = Vec::new();
    for (offset, input) in inputs.iter().enumerate() {
        let done = p.process(
            offset as i64,
            NOW,
            Some(&input.key),
            Some(&input.payload),
            input.content_type,
        );
        let status = done.status.expect("every record gets a status");
        match status {
            PublishStatus::Rejected => {
                let (code, message) = done.dead_letter.as_ref().unwrap_or_else(|| {
                    panic!("record {offset} rejected without a dead letter: {input:?}")
                });
                assert!(
                    !code.is_empty() && !message.is_empty(),
                    "reason of {offset}"
                );
                let (rejected, rest): (Vec<Raised>, Vec<Raised>) = done
                    .raised
                    .into_iter()
                    .partition(|e| e.kind() == Kind::Rejected);
                assert_eq!(rejected.len(), 1, "one REJECTED event for record {offset}");
                noisy.extend(rest);
                tally.rejected += 1;
                // A valid record may be refused too (a repeat after its dossier was
                // forgotten): the clean run gets it as well.
                if input.class == Class::Valid {
                    kept.push((offset, input, status));
                    noisy.extend(rejected);
                }
            }
            PublishStatus::Accepted | PublishStatus::Duplicate => {
                assert!(
                    done.dead_letter.is_none(),
                    "record {offset} applied and dead-lettered"
                );
                assert_ne!(
                    input.class,
                    Class::Invalid,
                    "invalid record {offset} applied: {input:?}"
                );
                if status == PublishStatus::Accepted {
                    tally.accepted += 1;
                } else {
                    tally.duplicate += 1;
                }
                if input.class == Class::Mutant {
                    tally.mutants_accepted += 1;
                }
                kept.push((offset, input, status));
                noisy.extend(done.raised);
            }
            other => panic!("record {offset}: status {other:?}"),
        }
    }
    noisy.extend(p.advance(END));
    // The records that were applied (and the valid ones), alone: the same statuses and
    // the same raised events.
    let mut clean = partition(&catalog);
    let mut expected: Vec<Raised> = Vec::new();
    for (offset, (at, input, status)) in kept.iter().enumerate() {
        let done = clean.process(
            offset as i64,
            NOW,
            Some(&input.key),
            Some(&input.payload),
            input.content_type,
        );
        if done.status != Some(*status) {
            let before: Vec<&Input> = inputs[..*at]
                .iter()
                .filter(|i| i.key == input.key)
                .collect();
            panic!(
                "record {at} is {status:?} with noise, {:?} without: {input:?}; the \
                 records of its dossier before: {before:?}",
                done.status
            );
        }
        expected.extend(done.raised);
    }
    expected.extend(clean.advance(END));
    assert!(
        expected.len() > n / 4,
        "a rich stream: {} raised",
        expected.len()
    );
    // The same raised events, each once, field by field. (Not always in the same order: a
    // rejected event still fires its dossier's rules due before it, early — README.)
    let by_id = |events: Vec<Raised>| -> std::collections::BTreeMap<String, Vec<Raised>> {
        let mut m = std::collections::BTreeMap::<String, Vec<Raised>>::new();
        for e in events {
            m.entry(e.id.clone()).or_default().push(e);
        }
        m
    };
    let raised = expected.len();
    let (noisy, expected) = (by_id(noisy), by_id(expected));
    let missing: Vec<&String> = expected
        .keys()
        .filter(|k| !noisy.contains_key(*k))
        .collect();
    let extra: Vec<&String> = noisy
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "{} missing with noise: {missing:?}",
        missing.len()
    );
    assert!(
        extra.is_empty(),
        "{} extra with noise: {extra:?}",
        extra.len()
    );
    for (id, e) in &expected {
        assert_eq!(&noisy[id], e, "raised event {id} with noise interleaved");
    }
    // The valid records alone (the generated province replays without a rejection).
    let mut valid = partition(&catalog);
    let only_valid = inputs.iter().filter(|i| i.class == Class::Valid);
    for (offset, input) in only_valid.enumerate() {
        let done = valid.process(
            offset as i64,
            NOW,
            Some(&input.key),
            Some(&input.payload),
            input.content_type,
        );
        assert_ne!(done.status, Some(PublishStatus::Rejected), "{input:?}");
    }
    assert!(tally.rejected > n / 5 && tally.duplicate > 0 && tally.accepted > n / 2);
    println!(
        "fuzz: {n} records ({tally:?}), {} raised, {:.1} s",
        raised,
        began.elapsed().as_secs_f64()
    );
}
