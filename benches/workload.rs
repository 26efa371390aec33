//! A seeded province-like workload for the engine benches: dossiers of the example catalog
//! received over working hours, handed through steps, sometimes paused, finished, returned.

use dunghan_benches::{SplitMix64, DAY, HOUR};
use dunghan_calendar::CalendarSet;
use dunghan_core::{Catalog, Channel, Engine, EngineConfig, Event, Payload, TimeAllowed};

/// The example catalog shipped in `deploy/`.
pub(crate) const CATALOG: &str = include_str!("../deploy/catalog/procedures.toml");

/// 2026-10-05T07:30:00+07:00, a Monday.
pub(crate) const START: i64 = 1_759_624_200;

/// A fresh engine on the national calendar and the example catalog.
pub(crate) fn engine(calendars: &CalendarSet) -> Engine {
    Engine::new(
        Catalog::parse(CATALOG, "procedures.toml").expect("catalog"),
        calendars.clone(),
        EngineConfig::default(),
    )
}

/// Events of `dossiers` dossiers, sorted by time (a live stream): about 6.5 per dossier.
pub(crate) fn events(dossiers: usize, seed: u64) -> Vec<Event> {
    let codes = [
        "2.000488", "2.001610", "1.004227", "1.009994", "2.000815", "1.001193",
    ];
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::with_capacity(dossiers * 7);
    for n in 0..dossiers {
        let id = format!("HS-2026-{n:08}");
        // Arrivals spread over 20 working days, within office hours.
        let mut t = START + rng.range(0, 20) * DAY + rng.range(0, 9 * HOUR);
        let code = codes[rng.range(0, codes.len() as i64) as usize];
        let mut push = |t: i64, k: &str, payload: Payload| {
            out.push(Event {
                event_id: format!("{id}-{k}"),
                dossier_id: id.clone(),
                occurred_at: t,
                payload,
            })
        };
        push(
            t,
            "r",
            Payload::Received {
                procedure_code: code.into(),
                agency_id: format!("agency-{}", n % 40),
                office_id: String::new(),
                channel: if n % 3 == 0 {
                    Channel::Online
                } else {
                    Channel::Counter
                },
            },
        );
        for step in 0..2 {
            t += rng.range(HOUR / 2, 4 * HOUR);
            let step_id = format!("buoc-{step}");
            push(
                t,
                &format!("s{step}"),
                Payload::StepStarted {
                    step_id: step_id.clone(),
                    department_id: format!("phong-{}", n % 300),
                    allotment: Some(TimeAllowed::WorkingHours(8.0 + step as f64 * 4.0)),
                },
            );
            if rng.range(0, 10) == 0 {
                t += rng.range(HOUR, DAY);
                push(
                    t,
                    &format!("q{step}"),
                    Payload::SupplementRequested {
                        reason: String::new(),
                    },
                );
                t += rng.range(HOUR, 3 * DAY);
                push(t, &format!("b{step}"), Payload::SupplementReceived);
            }
            t += rng.range(HOUR, 2 * DAY);
            push(t, &format!("c{step}"), Payload::StepCompleted { step_id });
        }
        t += rng.range(HOUR, DAY);
        if rng.range(0, 20) == 0 {
            push(
                t,
                "w",
                Payload::Withdrawn {
                    reason: String::new(),
                },
            );
            continue;
        }
        push(t, "ready", Payload::ResultReady);
        t += rng.range(HOUR, 3 * DAY);
        push(t, "ret", Payload::ResultReturned);
    }
    out.sort_by_key(|e| e.occurred_at);
    out
}
