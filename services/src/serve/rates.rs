//! Rates over a period (domain.md §7), computed from the stored events and raised events:
//! received, early / on time / late, on-time rate, the Decision 766 progress score and
//! satisfaction, grouped by one dimension.

use std::collections::{BTreeMap, HashMap};

use dunghan_proto::v1::dossier_event::Payload;
use dunghan_proto::v1::{
    DossierEvent, Outcome, RateDimension, Rates, SatisfactionLevel, SlaEvent, SlaEventKind,
};

/// What the raised events say about one dossier.
#[derive(Debug, Default)]
struct Dossier<'a> {
    computed: Option<&'a SlaEvent>,
    outcome: Option<&'a SlaEvent>,
}

fn secs(t: &Option<dunghan_proto::pbjson_types::Timestamp>) -> i64 {
    t.as_ref().map_or(i64::MIN, |t| t.seconds)
}

fn channel_name(e: &SlaEvent) -> String {
    e.channel()
        .as_str_name()
        .trim_start_matches("CHANNEL_")
        .to_ascii_lowercase()
}

/// The group key of a dossier for `by`.
fn key(d: &Dossier<'_>, by: RateDimension) -> String {
    let Some(c) = d.computed else {
        return String::new();
    };
    match by {
        RateDimension::Department => d
            .outcome
            .map(|o| o.department_id.clone())
            .unwrap_or_default(),
        RateDimension::Field => c.field.clone(),
        RateDimension::Channel => channel_name(c),
        RateDimension::Procedure => c.procedure_code.clone(),
        RateDimension::Agency | RateDimension::Unspecified => c.agency_id.clone(),
    }
}

fn finish(mut r: Rates, good: u64) -> Rates {
    let finished = r.early + r.on_time + r.late;
    r.on_time_rate = if finished > 0 {
        (r.early + r.on_time) as f64 / finished as f64
    } else {
        0.0
    };
    r.progress_score = if r.received > 0 {
        20.0 * good as f64 / r.received as f64
    } else {
        0.0
    };
    r.satisfaction_rate = if r.ratings > 0 {
        r.satisfied as f64 / r.ratings as f64
    } else {
        0.0
    };
    r
}

/// Rows by key (sorted) and the total, for the period `[from, to)`.
pub(crate) fn compute(
    events: &[DossierEvent],
    raised: &[SlaEvent],
    from: i64,
    to: i64,
    by: RateDimension,
) -> (Vec<Rates>, Rates) {
    let mut dossiers: HashMap<&str, Dossier<'_>> = HashMap::new();
    for r in raised {
        let d = dossiers.entry(r.dossier_id.as_str()).or_default();
        match r.kind() {
            SlaEventKind::DeadlineComputed => d.computed = Some(r),
            SlaEventKind::Outcome => d.outcome = Some(r),
            _ => {}
        }
    }
    let within = |t: i64| from <= t && t < to;
    // (counts, dossiers counting for the 766 score) per key; "" + total kept apart.
    let mut rows: BTreeMap<String, (Rates, u64)> = BTreeMap::new();
    let mut total = (Rates::default(), 0u64);
    let mut add = |key: String, f: &dyn Fn(&mut Rates, &mut u64)| {
        let row = rows.entry(key).or_default();
        f(&mut row.0, &mut row.1);
        f(&mut total.0, &mut total.1);
    };
    for d in dossiers.values() {
        let Some(c) = d.computed else { continue };
        let k = key(d, by);
        let received_in = within(secs(&c.raised_at));
        let finished = d.outcome.filter(|o| within(secs(&o.raised_at)));
        if received_in {
            // Finished on time by the period's end, or still within its deadline then.
            let good = match d.outcome.filter(|o| secs(&o.raised_at) < to) {
                Some(o) => matches!(o.outcome(), Outcome::Early | Outcome::OnTime),
                None => secs(&c.deadline) >= to,
            };
            add(k.clone(), &|r, g| {
                r.received += 1;
                *g += u64::from(good);
            });
        }
        if let Some(o) = finished {
            let outcome = o.outcome();
            add(k, &|r, _| match outcome {
                Outcome::Early => r.early += 1,
                Outcome::OnTime => r.on_time += 1,
                Outcome::Late => r.late += 1,
                Outcome::Unspecified => r.ended += 1,
            });
        }
    }
    for e in events {
        let Some(Payload::CitizenRated(rating)) = &e.payload else {
            continue;
        };
        if !within(secs(&e.occurred_at)) {
            continue;
        }
        let k = match (by, dossiers.get(e.dossier_id.as_str())) {
            (RateDimension::Department, _) => rating.department_id.clone(),
            (_, Some(d)) => key(d, by),
            (_, None) => String::new(),
        };
        let satisfied = matches!(
            rating.level(),
            SatisfactionLevel::VerySatisfied | SatisfactionLevel::Satisfied
        );
        add(k, &|r, _| {
            r.ratings += 1;
            r.satisfied += u64::from(satisfied);
        });
    }
    let rows = rows
        .into_iter()
        .map(|(key, (r, good))| finish(Rates { key, ..r }, good))
        .collect();
    (rows, finish(total.0, total.1))
}

/// Sums the rates several instances computed over disjoint dossiers (a cluster's fan-out):
/// counts add up; rates and the progress score are recomputed from the sums.
pub(crate) fn merge(parts: Vec<(Vec<Rates>, Rates)>) -> (Vec<Rates>, Rates) {
    fn add(into: &mut (Rates, u64), r: &Rates) {
        let t = &mut into.0;
        t.received += r.received;
        t.early += r.early;
        t.on_time += r.on_time;
        t.late += r.late;
        t.ended += r.ended;
        t.ratings += r.ratings;
        t.satisfied += r.satisfied;
        // progress_score = 20 × good / received, so good comes back exactly.
        into.1 += (r.progress_score * r.received as f64 / 20.0).round() as u64;
    }
    let mut rows: BTreeMap<String, (Rates, u64)> = BTreeMap::new();
    let mut total = (Rates::default(), 0u64);
    for (part_rows, part_total) in &parts {
        for r in part_rows {
            add(rows.entry(r.key.clone()).or_default(), r);
        }
        add(&mut total, part_total);
    }
    let rows = rows
        .into_iter()
        .map(|(key, (r, good))| finish(Rates { key, ..r }, good))
        .collect();
    (rows, finish(total.0, total.1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dunghan_proto::pbjson_types::Timestamp;

    fn at(t: i64) -> Option<Timestamp> {
        Some(Timestamp {
            seconds: t,
            nanos: 0,
        })
    }

    fn computed(dossier: &str, agency: &str, received: i64, deadline: i64) -> SlaEvent {
        SlaEvent {
            id: format!("{dossier}:deadline_computed:-:0"),
            dossier_id: dossier.into(),
            kind: SlaEventKind::DeadlineComputed as i32,
            agency_id: agency.into(),
            raised_at: at(received),
            deadline: at(deadline),
            ..Default::default()
        }
    }

    fn outcome(dossier: &str, at_t: i64, outcome: Outcome) -> SlaEvent {
        SlaEvent {
            id: format!("{dossier}:outcome:-:0"),
            dossier_id: dossier.into(),
            kind: SlaEventKind::Outcome as i32,
            raised_at: at(at_t),
            outcome: outcome as i32,
            ..Default::default()
        }
    }

    #[test]
    fn rates_and_the_766_score_over_a_period() {
        // Period [100, 200). A: received 110, early at 150. B: received 120, late at 190.
        // C: received 130, deadline 300, unfinished (within its deadline at 200).
        // D: received 140, deadline 180, unfinished (overdue at 200). E: received before.
        let raised = vec![
            computed("A", "x", 110, 160),
            outcome("A", 150, Outcome::Early),
            computed("B", "x", 120, 170),
            outcome("B", 190, Outcome::Late),
            computed("C", "y", 130, 300),
            computed("D", "y", 140, 180),
            computed("E", "x", 50, 120),
            outcome("E", 115, Outcome::OnTime),
        ];
        let rating = DossierEvent {
            event_id: "r".into(),
            dossier_id: "A".into(),
            occurred_at: at(155),
            payload: Some(Payload::CitizenRated(dunghan_proto::v1::CitizenRated {
                level: SatisfactionLevel::Satisfied as i32,
                ..Default::default()
            })),
        };
        let (rows, total) = compute(&[rating], &raised, 100, 200, RateDimension::Agency);
        assert_eq!(total.received, 4);
        assert_eq!((total.early, total.on_time, total.late), (1, 1, 1));
        assert!((total.on_time_rate - 2.0 / 3.0).abs() < 1e-9);
        // Good for 766: A (early) and C (within deadline); not B (late), not D (overdue).
        assert!((total.progress_score - 10.0).abs() < 1e-9);
        assert_eq!((total.ratings, total.satisfied), (1, 1));
        let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["x", "y"]);
        assert_eq!((rows[0].received, rows[1].received), (2, 2));
        assert!((rows[1].progress_score - 10.0).abs() < 1e-9);
    }
}
