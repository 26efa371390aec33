//! A calendar change (a closure announced while dossiers are open) moves their deadlines
//! by the working time the change removes, and says so with DEADLINE_SHIFTED.

use chrono::DateTime;
use dunghan_calendar::{CalendarBuilder, CalendarSet, Closure};
use dunghan_core::{Catalog, Channel, Engine, EngineConfig, Event, Kind, Payload};

const CATALOG: &str = include_str!("../../../tests/scenarios/catalog.toml");

fn at(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text).unwrap().timestamp()
}

#[test]
fn a_closure_moves_open_deadlines_once() {
    let plain = CalendarBuilder::national().years(2025, 2027);
    let mut engine = Engine::new(
        Catalog::parse(CATALOG, "catalog.toml").unwrap(),
        CalendarSet::single(plain.clone().build().unwrap()),
        EngineConfig::default(),
    );
    let mut out = Vec::new();
    for (dossier, received) in [
        ("D", "2026-10-05T10:00:00+07:00"),
        ("E", "2026-10-01T08:00:00+07:00"),
    ] {
        engine.apply(
            &Event {
                event_id: format!("{dossier}-r"),
                dossier_id: dossier.into(),
                occurred_at: at(received),
                payload: Payload::Received {
                    procedure_code: "P3".into(),
                    agency_id: "so-a".into(),
                    office_id: String::new(),
                    channel: Channel::Counter,
                },
            },
            &mut out,
        );
    }
    // E (due Mon 6/10 08:00) has its result before the change; D is due Thu 8/10 10:00.
    engine.apply(
        &Event {
            event_id: "E-ready".into(),
            dossier_id: "E".into(),
            occurred_at: at("2026-10-02T15:00:00+07:00"),
            payload: Payload::ResultReady,
        },
        &mut out,
    );
    out.clear();
    // Announced Tue 6/10 09:00: the office is closed all Wednesday 7/10.
    let closed = plain
        .closure(Closure {
            from: DateTime::parse_from_rfc3339("2026-10-07T00:00:00+07:00")
                .unwrap()
                .into(),
            to: DateTime::parse_from_rfc3339("2026-10-08T00:00:00+07:00")
                .unwrap()
                .into(),
            reason: "Bão".into(),
        })
        .build()
        .unwrap();
    engine.replace_calendars(
        CalendarSet::single(closed),
        at("2026-10-06T09:00:00+07:00"),
        "closure-1",
        &mut out,
    );
    assert_eq!(out.len(), 1, "{out:?}");
    let shifted = &out[0];
    assert_eq!(shifted.kind(), Kind::DeadlineShifted);
    assert_eq!(shifted.id, "D:deadline_shifted:-:0:closure-1");
    // 17 working hours were left at Tue 09:00; without Wednesday they end Fri 9/10 10:00.
    assert_eq!(shifted.deadline, Some(at("2026-10-09T10:00:00+07:00")));
    assert_eq!(shifted.raised_at, at("2026-10-06T09:00:00+07:00"));
}
