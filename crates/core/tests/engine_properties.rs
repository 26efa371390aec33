//! Engine properties: replaying the same events gives the same output; interleaving the
//! events of different dossiers differently does not change any dossier's output.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use dunghan_calendar::{CalendarBuilder, CalendarSet};
use dunghan_core::{
    Catalog, Engine, EngineConfig, Event, Payload, Raised, Satisfaction, TimeAllowed,
};
use proptest::prelude::*;

const CATALOG: &str = include_str!("../../../tests/scenarios/catalog.toml");
const MON_2026_10_05: i64 = 1_759_633_200; // 2026-10-05T10:00:00+07:00

fn calendars() -> CalendarSet {
    static SET: OnceLock<CalendarSet> = OnceLock::new();
    SET.get_or_init(|| {
        CalendarSet::single(
            CalendarBuilder::national()
                .years(2025, 2028)
                .build()
                .unwrap(),
        )
    })
    .clone()
}

fn engine() -> Engine {
    Engine::new(
        Catalog::parse(CATALOG, "catalog.toml").unwrap(),
        calendars(),
        EngineConfig::default(),
    )
}

/// One step of a dossier's life, before ids and times are attached.
#[derive(Debug, Clone)]
enum Op {
    Step(&'static str, &'static str),
    Complete(&'static str),
    SupplementRequested,
    SupplementReceived,
    FeesRequested,
    FeesPaid,
    Apology(i64),
    Ready,
    Returned,
    Withdrawn,
    Rated,
    Duplicate,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Step("xu-ly", "phong-a")),
        1 => Just(Op::Step("duyet", "phong-b")),
        1 => Just(Op::Step("ad-hoc", "phong-c")),
        3 => Just(Op::Complete("xu-ly")),
        1 => Just(Op::Complete("duyet")),
        1 => Just(Op::SupplementRequested),
        1 => Just(Op::SupplementReceived),
        1 => Just(Op::FeesRequested),
        1 => Just(Op::FeesPaid),
        1 => (1i64..10 * 86_400).prop_map(Op::Apology),
        2 => Just(Op::Ready),
        1 => Just(Op::Returned),
        1 => Just(Op::Withdrawn),
        1 => Just(Op::Rated),
        1 => Just(Op::Duplicate),
    ]
}

/// A generated dossier: procedure index, start offset, and (gap in seconds, op) pairs.
type Spec = (usize, i64, Vec<(i64, Op)>);

fn dossier() -> impl Strategy<Value = Spec> {
    (
        0usize..4,
        0i64..20 * 86_400,
        proptest::collection::vec((0i64..3 * 86_400, op()), 0..10),
    )
}

fn events(specs: &[Spec]) -> Vec<Vec<Event>> {
    let codes = ["P1", "P3", "P5", "P5R"];
    specs
        .iter()
        .enumerate()
        .map(|(n, (proc, start, ops))| {
            let id = format!("D{n}");
            let mut t = MON_2026_10_05 + start;
            let mut out = vec![Event {
                event_id: format!("{id}-r"),
                dossier_id: id.clone(),
                occurred_at: t,
                payload: Payload::Received {
                    procedure_code: codes[*proc].into(),
                    agency_id: format!("agency-{}", n % 3),
                    office_id: String::new(),
                    channel: dunghan_core::Channel::Counter,
                },
            }];
            for (i, (gap, op)) in ops.iter().enumerate() {
                t += gap;
                let payload = match op {
                    Op::Step(step, dep) => Payload::StepStarted {
                        step_id: (*step).into(),
                        department_id: (*dep).into(),
                        allotment: (*step == "ad-hoc").then_some(TimeAllowed::WorkingHours(6.0)),
                    },
                    Op::Complete(step) => Payload::StepCompleted {
                        step_id: (*step).into(),
                    },
                    Op::SupplementRequested => Payload::SupplementRequested {
                        reason: String::new(),
                    },
                    Op::SupplementReceived => Payload::SupplementReceived,
                    Op::FeesRequested => Payload::FeesRequested,
                    Op::FeesPaid => Payload::FeesPaid,
                    Op::Apology(later) => Payload::ApologyIssued {
                        department_id: "phong-a".into(),
                        new_appointment: Some(t + later),
                        reason: String::new(),
                    },
                    Op::Ready => Payload::ResultReady,
                    Op::Returned => Payload::ResultReturned,
                    Op::Withdrawn => Payload::Withdrawn {
                        reason: String::new(),
                    },
                    Op::Rated => Payload::CitizenRated {
                        official_id: "cb".into(),
                        department_id: "phong-a".into(),
                        level: Satisfaction::Satisfied,
                    },
                    Op::Duplicate => {
                        let mut again = out.last().cloned().expect("received first");
                        again.occurred_at = again.occurred_at.max(t - gap);
                        out.push(again);
                        continue;
                    }
                };
                out.push(Event {
                    event_id: format!("{id}-{i}"),
                    dossier_id: id.clone(),
                    occurred_at: t,
                    payload,
                });
            }
            out
        })
        .collect()
}

/// Interleaves per-dossier sequences, keeping each dossier's order, choosing by `picks`.
fn interleave(per_dossier: &[Vec<Event>], picks: &[usize]) -> Vec<Event> {
    let mut cursors = vec![0usize; per_dossier.len()];
    let mut out = Vec::new();
    let mut p = 0;
    loop {
        let live: Vec<usize> = (0..per_dossier.len())
            .filter(|&d| cursors[d] < per_dossier[d].len())
            .collect();
        if live.is_empty() {
            return out;
        }
        let d = live[picks.get(p).copied().unwrap_or(0) % live.len()];
        p += 1;
        out.push(per_dossier[d][cursors[d]].clone());
        cursors[d] += 1;
    }
}

fn run(events: &[Event]) -> Vec<Raised> {
    let mut engine = engine();
    let mut out = Vec::new();
    for e in events {
        engine.apply(e, &mut out);
    }
    let end = events.iter().map(|e| e.occurred_at).max().unwrap_or(0) + 30 * 86_400;
    engine.advance_to(end, &mut out);
    out
}

/// Like [`run`], but the final advance fires at most `slice` dossiers per call.
fn run_sliced(events: &[Event], slice: usize) -> Vec<Raised> {
    let mut engine = engine();
    let mut out = Vec::new();
    for e in events {
        engine.apply(e, &mut out);
    }
    let end = events.iter().map(|e| e.occurred_at).max().unwrap_or(0) + 30 * 86_400;
    while engine.advance_some(end, slice, &mut out) {}
    out
}

/// As a live node runs: before each event the clock advances to the second before it.
/// Where `ahead` says so, the next pending moment or the one after it is then fired ahead
/// of time (prepared, a dossier per event) and what it raised held back until the clock reaches it, minus
/// the dossiers withdrawn by events that came first. Returns the output and the counts.
fn run_live(events: &[Event], ahead: &[u8]) -> (Vec<Raised>, dunghan_core::Stats) {
    let mut engine = engine();
    let (mut out, mut held) = (Vec::new(), Vec::new());
    let advance = |engine: &mut Engine, now: i64, out: &mut Vec<Raised>, held: &mut Vec<Raised>| {
        if engine.release(now).is_some() {
            out.append(held);
        }
        engine.advance_to(now, out);
    };
    for (i, e) in events.iter().enumerate() {
        advance(&mut engine, e.occurred_at - 1, &mut out, &mut held);
        // 1: the next pending moment; 2: the one after it (others fire before it).
        let moment = match ahead.get(i) {
            Some(1) => engine.next_timer(),
            Some(2) => engine
                .next_timer()
                .and_then(|t| engine.crowded_moment(t, t + 86_400, 1))
                .map(|(t, _)| t),
            _ => None,
        };
        // A moment is prepared a dossier per event, events in between.
        if let Some(at) = engine.prepared_at().or(moment) {
            engine.prepare_some(at, 1, &mut held);
        }
        engine.apply(e, &mut out);
        let gone = engine.take_withdrawn();
        held.retain(|r| !gone.contains(&r.dossier_id));
    }
    let end = events.iter().map(|e| e.occurred_at).max().unwrap_or(0) + 30 * 86_400;
    advance(&mut engine, end, &mut out, &mut held);
    assert!(held.is_empty(), "everything held went out");
    (out, engine.stats())
}

fn by_dossier(raised: &[Raised]) -> BTreeMap<String, Vec<Raised>> {
    let mut map: BTreeMap<String, Vec<Raised>> = BTreeMap::new();
    for r in raised {
        map.entry(r.dossier_id.to_string())
            .or_default()
            .push(r.clone());
    }
    map
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn replaying_twice_gives_identical_output(
        specs in proptest::collection::vec(dossier(), 1..12),
        picks in proptest::collection::vec(0usize..100, 0..200),
    ) {
        let input = interleave(&events(&specs), &picks);
        prop_assert_eq!(run(&input), run(&input));
    }

    #[test]
    fn interleaving_other_dossiers_changes_no_dossiers_output(
        specs in proptest::collection::vec(dossier(), 1..12),
        a in proptest::collection::vec(0usize..100, 0..200),
        b in proptest::collection::vec(0usize..100, 0..200),
    ) {
        let per = events(&specs);
        let left = by_dossier(&run(&interleave(&per, &a)));
        let right = by_dossier(&run(&interleave(&per, &b)));
        prop_assert_eq!(left, right);
    }

    #[test]
    fn firing_a_burst_in_slices_changes_nothing(
        specs in proptest::collection::vec(dossier(), 1..12),
        picks in proptest::collection::vec(0usize..100, 0..200),
        slice in 1usize..4,
    ) {
        let input = interleave(&events(&specs), &picks);
        prop_assert_eq!(run_sliced(&input, slice), run(&input));
    }

    #[test]
    fn firing_moments_ahead_of_time_changes_nothing(
        specs in proptest::collection::vec(dossier(), 1..12),
        picks in proptest::collection::vec(0usize..100, 0..200),
        ahead in proptest::collection::vec(0u8..3, 0..200),
    ) {
        let input = interleave(&events(&specs), &picks);
        let (out, stats) = run_live(&input, &ahead);
        let (reference, reference_stats) = run_live(&input, &[]);
        prop_assert_eq!(by_dossier(&out), by_dossier(&reference));
        prop_assert_eq!(stats, reference_stats);
    }

    #[test]
    fn ids_are_unique_and_each_dossier_has_one_deadline(
        specs in proptest::collection::vec(dossier(), 1..12),
        picks in proptest::collection::vec(0usize..100, 0..200),
    ) {
        let out = run(&interleave(&events(&specs), &picks));
        let mut ids: Vec<&str> = out.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        prop_assert_eq!(ids.len(), n);
        for (_, raised) in by_dossier(&out) {
            let outcomes = raised.iter().filter(|r| r.kind() == dunghan_core::Kind::Outcome).count();
            prop_assert!(outcomes <= 1);
            let computed = raised.iter().filter(|r| r.kind() == dunghan_core::Kind::DeadlineComputed).count();
            prop_assert_eq!(computed, 1);
            // Raised events never go back in time before the dossier's receipt.
            prop_assert!(raised.iter().all(|r| r.raised_at >= raised[0].raised_at));
        }
    }
}

/// A dossier prepared for its first moment, then a result before that moment: the firing
/// is undone (withdrawn) and the result is on time, as without the preparation.
#[test]
fn an_event_before_a_prepared_moment_undoes_the_firing() {
    let spec = (0, 0, vec![(3_600, Op::Step("xu-ly", "phong-a"))]);
    let mut input = events(&[spec]).remove(0);
    let mut engine = engine();
    let mut out = Vec::new();
    for e in &input {
        engine.apply(e, &mut out);
    }
    let at = engine.next_timer().expect("a pending moment");
    let mut held = Vec::new();
    assert!(!engine.prepare_some(at, 10, &mut held));
    assert!(!held.is_empty(), "the moment raised something");
    assert_eq!(engine.prepared_at(), Some(at));
    assert_eq!(engine.prepared_dossiers(), 1);
    assert!(
        engine.next_timer().is_none_or(|t| t > at),
        "its next timer is later"
    );
    assert!(engine.release(at - 1).is_none(), "not before the moment");
    let ready = Event {
        event_id: "D0-ready".into(),
        dossier_id: "D0".into(),
        occurred_at: at - 1,
        payload: Payload::ResultReady,
    };
    engine.apply(&ready, &mut out);
    let withdrawn: Vec<String> = engine
        .take_withdrawn()
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(withdrawn, ["D0"]);
    assert_eq!(engine.prepared_dossiers(), 0);
    input.push(ready);
    let (reference, reference_stats) = run_live(&input, &[]);
    assert_eq!(by_dossier(&out), by_dossier(&reference));
    assert_eq!(engine.stats(), reference_stats);
    assert!(
        engine.release(at).is_some(),
        "the moment ends the preparation"
    );
    assert_eq!(engine.prepared_at(), None);
}

#[test]
fn memory_per_open_dossier_with_one_active_step() {
    let mut engine = engine();
    let mut out = Vec::new();
    let n = 20_000;
    for i in 0..n {
        let id = format!("HS-2026-{i:08}");
        let t = MON_2026_10_05 + (i % 500) as i64 * 60;
        engine.apply(
            &Event {
                event_id: format!("{id}-r"),
                dossier_id: id.clone(),
                occurred_at: t,
                payload: Payload::Received {
                    procedure_code: "P5".into(),
                    agency_id: "so-a".into(),
                    office_id: String::new(),
                    channel: dunghan_core::Channel::Online,
                },
            },
            &mut out,
        );
        engine.apply(
            &Event {
                event_id: format!("{id}-s"),
                dossier_id: id,
                occurred_at: t + 60,
                payload: Payload::StepStarted {
                    step_id: "xu-ly".into(),
                    department_id: "phong-a".into(),
                    allotment: None,
                },
            },
            &mut out,
        );
    }
    assert_eq!(engine.open_dossiers(), n);
    assert_eq!(engine.pending_timers(), n);
    // The exact figure is measured by the bench; here only that the accounting is sane.
    let per = engine.state_bytes() / n;
    assert!(per > 100 && per < 1_000, "{per} bytes per dossier");
}
