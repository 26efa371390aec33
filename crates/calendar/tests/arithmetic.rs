//! Working-time arithmetic: the worked examples of domain.md §8, closures, nesting, and
//! properties checked against the naive day-by-day reference.

use chrono::{DateTime, NaiveDate, Utc};
use dunghan_calendar::{
    reference, Anchor, Calendar, CalendarBuilder, CalendarFile, CalendarSet, Closure, SkipReason,
};
use proptest::prelude::*;
use std::sync::OnceLock;

fn national() -> &'static Calendar {
    static CAL: OnceLock<Calendar> = OnceLock::new();
    CAL.get_or_init(|| {
        CalendarBuilder::national()
            .years(1995, 2035)
            .build()
            .unwrap()
    })
}

fn at(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text).unwrap().timestamp()
}

fn show(cal: &Calendar, t: i64) -> String {
    cal.local(DateTime::<Utc>::from_timestamp(t, 0).unwrap())
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

#[test]
fn example_1_tet_is_skipped() {
    // Received Fri 13/2/2026 16:20, 3 working days → Wed 25/2/2026 16:20.
    let cal = national();
    let t = at("2026-02-13T16:20:00+07:00");
    let due = cal
        .add_working_days_ts(t, 3.0, Anchor::SameClockTime)
        .unwrap();
    assert_eq!(show(cal, due), "2026-02-25T16:20:00+07:00");
    let skipped = cal.skipped_between(t, due);
    let dates: Vec<String> = skipped.iter().map(|s| s.date.to_string()).collect();
    assert_eq!(
        dates,
        [
            "2026-02-14",
            "2026-02-15",
            "2026-02-16",
            "2026-02-17",
            "2026-02-18",
            "2026-02-19",
            "2026-02-20",
            "2026-02-21",
            "2026-02-22"
        ]
    );
    assert_eq!(skipped[0].reason, SkipReason::Weekend);
    assert_eq!(skipped[2].reason, SkipReason::Holiday);
    assert!(skipped[2].name_vi.contains("Tết"), "{:?}", skipped[2]);
}

#[test]
fn example_2_swapped_saturday_counts() {
    // Sat 10/1/2026 is a swapped working day: 1 working day → Mon 12/1/2026 09:00.
    let cal = national();
    let t = at("2026-01-10T09:00:00+07:00");
    assert!(cal.is_working_ts(t).unwrap());
    let due = cal
        .add_working_days_ts(t, 1.0, Anchor::SameClockTime)
        .unwrap();
    assert_eq!(show(cal, due), "2026-01-12T09:00:00+07:00");
}

#[test]
fn example_3_pause_moves_the_deadline() {
    // 5 working days from Mon 5/10 10:00; a supplement pause Tue 6/10 10:00 – Thu 8/10 10:00.
    let cal = national();
    let t = at("2026-10-05T10:00:00+07:00");
    let due = cal
        .add_working_days_ts(t, 5.0, Anchor::SameClockTime)
        .unwrap();
    assert_eq!(show(cal, due), "2026-10-12T10:00:00+07:00");
    let paused = cal
        .working_secs_between(
            at("2026-10-06T10:00:00+07:00"),
            at("2026-10-08T10:00:00+07:00"),
        )
        .unwrap();
    assert_eq!(paused, 2 * 8 * 3600);
    let moved = cal.add_working_secs(due, paused).unwrap();
    assert_eq!(show(cal, moved), "2026-10-14T10:00:00+07:00");
}

#[test]
fn end_of_day_anchor_and_boundaries() {
    let cal = national();
    let t = at("2026-02-13T16:20:00+07:00");
    let due = cal.add_working_days_ts(t, 3.0, Anchor::EndOfDay).unwrap();
    assert_eq!(show(cal, due), "2026-02-25T17:00:00+07:00");
    // A full morning from its start ends at 11:30, not 13:00.
    let m = cal
        .add_working_secs(at("2026-10-05T07:30:00+07:00"), 4 * 3600)
        .unwrap();
    assert_eq!(show(cal, m), "2026-10-05T11:30:00+07:00");
    // Received at night: counting starts with the next session.
    let n = cal
        .add_working_secs(at("2026-10-05T20:00:00+07:00"), 3600)
        .unwrap();
    assert_eq!(show(cal, n), "2026-10-06T08:30:00+07:00");
    assert_eq!(
        show(
            cal,
            cal.next_working_ts(at("2026-10-03T09:00:00+07:00"))
                .unwrap()
        ),
        "2026-10-05T07:30:00+07:00"
    );
    // Half a day.
    let h = cal
        .add_working_days_ts(at("2026-10-05T07:30:00+07:00"), 0.5, Anchor::SameClockTime)
        .unwrap();
    assert_eq!(show(cal, h), "2026-10-05T11:30:00+07:00");
    // Subtraction: one working day before a Monday deadline is the Friday.
    let back = cal
        .add_working_secs(at("2026-10-12T10:00:00+07:00"), -8 * 3600)
        .unwrap();
    assert_eq!(show(cal, back), "2026-10-09T10:00:00+07:00");
}

#[test]
fn calendar_days_and_months_roll_forward() {
    let cal = national();
    // 10 calendar days from Wed 21/1/2026 10:00 → Sat 31/1 → end of Mon 2/2.
    let t = at("2026-01-21T10:00:00+07:00");
    let due = cal
        .add_calendar_days_ts(t, 10, Anchor::SameClockTime)
        .unwrap();
    assert_eq!(show(cal, due), "2026-02-02T17:00:00+07:00");
    let due = cal
        .add_calendar_days_ts(t, 9, Anchor::SameClockTime)
        .unwrap();
    assert_eq!(show(cal, due), "2026-01-30T10:00:00+07:00");
    // 1 month from 31/3/2026 → 30/4 holiday, 1/5 holiday, weekend → end of Mon 4/5.
    let t = at("2026-03-31T09:00:00+07:00");
    let due = cal.add_months_ts(t, 1, Anchor::SameClockTime).unwrap();
    assert_eq!(show(cal, due), "2026-05-04T17:00:00+07:00");
}

#[test]
fn rejects_bad_durations_and_out_of_range() {
    let cal = national();
    assert!(cal.days_to_secs(-1.0).is_err());
    assert!(cal.days_to_secs(f64::NAN).is_err());
    let err = cal
        .add_working_days_ts(at("2035-12-30T09:00:00+07:00"), 30.0, Anchor::SameClockTime)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("outside the calendar's years 1995–2035"),
        "{err}"
    );
    assert!(cal.is_working_ts(at("1990-01-01T09:00:00+07:00")).is_err());
    // Huge durations are errors, never a wrapped-around instant.
    let t = at("2026-10-05T10:00:00+07:00");
    assert!(cal
        .add_working_days_ts(t, 1e15, Anchor::SameClockTime)
        .is_err());
    assert!(cal.add_working_days_ts(t, 1e15, Anchor::EndOfDay).is_err());
    assert!(cal.add_working_secs(t, i64::MAX).is_err());
    assert!(cal.add_working_secs(t, i64::MIN + 1).is_err());
    assert!(
        cal.add_working_secs(t, 10_000 * 8 * 3600).is_err(),
        "beyond 2035"
    );
}

fn storm() -> Calendar {
    // A storm closes the office from 14:00 Tue 27/10/2026 to Wed 28/10 12:00.
    CalendarBuilder::national()
        .years(2025, 2027)
        .closure(Closure {
            from: DateTime::parse_from_rfc3339("2026-10-27T14:00:00+07:00")
                .unwrap()
                .into(),
            to: DateTime::parse_from_rfc3339("2026-10-28T12:00:00+07:00")
                .unwrap()
                .into(),
            reason: "Bão số 12".into(),
        })
        .build()
        .unwrap()
}

#[test]
fn closures_stop_the_clock() {
    let cal = storm();
    let t = at("2026-10-27T10:00:00+07:00");
    // Tue 10:00–14:00 gives 2.5 h, Wed only its afternoon (4 h), then 1.5 h on Thursday.
    let due = cal.add_working_secs(t, 8 * 3600).unwrap();
    assert_eq!(show(&cal, due), "2026-10-29T09:00:00+07:00");
    assert_eq!(reference::add_working_secs(&cal, t, 8 * 3600).unwrap(), due);
    let skipped = cal.skipped_between(t, due);
    assert_eq!(skipped.len(), 2);
    assert!(skipped
        .iter()
        .all(|s| s.reason == SkipReason::Closure && !s.whole_day));
    assert!(skipped[0].name_vi.contains("Bão số 12"));
    assert!(!cal.is_working_ts(at("2026-10-28T09:00:00+07:00")).unwrap());
}

#[test]
fn nested_calendars_from_a_file() {
    let text = r#"
        name = "tinh-a"
        years = [2025, 2027]
        [hours]
        weekdays = ["07:00-11:30", "13:30-17:00"]
        [[day]]
        date = 2026-10-02
        working = false
        name = "Nghỉ lễ địa phương"
        [office.xa-b]
        hours = { saturday = ["07:30-11:30"] }
        [[office.xa-b.closure]]
        from = "2026-10-27T14:00:00"
        to = "2026-10-28T12:00:00"
        reason = "Bão"
    "#;
    let file = CalendarFile::parse(text, "tinh-a.toml").unwrap();
    let set = CalendarSet::from_file(&file, "tinh-a.toml", vec![]).unwrap();
    let province = set.for_office(None);
    let office = set.for_office(Some("xa-b"));
    assert_eq!(set.for_office(Some("unknown")).name(), "tinh-a");
    assert!(set.office("unknown").is_err());
    let fri = at("2026-10-02T09:00:00+07:00");
    assert!(!province.is_working_ts(fri).unwrap());
    assert!(
        !office.is_working_ts(fri).unwrap(),
        "the office inherits province days"
    );
    let sat = at("2026-10-03T09:00:00+07:00");
    assert!(!province.is_working_ts(sat).unwrap());
    assert!(office.is_working_ts(sat).unwrap());
    assert!(!office
        .is_working_ts(at("2026-10-28T09:00:00+07:00"))
        .unwrap());
    assert!(province
        .is_working_ts(at("2026-10-28T09:00:00+07:00"))
        .unwrap());
    assert!(province
        .is_working_ts(at("2026-10-05T07:10:00+07:00"))
        .unwrap());
    // National holidays still apply under the province layer.
    assert!(!province
        .is_working_ts(at("2026-09-02T09:00:00+07:00"))
        .unwrap());
}

#[test]
fn calendar_file_errors_name_the_field() {
    let err = CalendarFile::parse("nmae = \"x\"", "bad.toml").unwrap_err();
    assert!(
        err.to_string().contains("bad.toml") && err.to_string().contains("nmae"),
        "{err}"
    );
    let file = CalendarFile::parse("[hours]\nmonday = [\"11:00-07:00\"]", "bad.toml").unwrap();
    let err = CalendarSet::from_file(&file, "bad.toml", vec![]).unwrap_err();
    assert!(err.to_string().contains("hours.monday"), "{err}");
    let file = CalendarFile::parse("timezone = \"Mars/Olympus\"", "bad.toml").unwrap();
    let err = CalendarSet::from_file(&file, "bad.toml", vec![]).unwrap_err();
    assert!(err.to_string().contains("timezone"), "{err}");
    let file = CalendarFile::parse(
        "[[closure]]\nfrom = \"2026-10-28T12:00:00\"\nto = \"2026-10-27T12:00:00\"\nreason = \"x\"",
        "bad.toml",
    )
    .unwrap();
    let err = CalendarSet::from_file(&file, "bad.toml", vec![]).unwrap_err();
    assert!(err.to_string().contains("closure[0].to"), "{err}");
}

// ---- properties ---------------------------------------------------------------------------

const START_2000: i64 = 946_659_600; // 2000-01-01T00:00+07:00
const END_2030: i64 = 1_924_966_800; // 2031-01-01T00:00+07:00

fn instant() -> impl Strategy<Value = i64> {
    START_2000..END_2030 - 400 * 86_400
}

fn span() -> impl Strategy<Value = i64> {
    prop_oneof![0i64..8 * 3600, 0i64..30 * 8 * 3600, 0i64..250 * 8 * 3600]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn add_matches_the_day_by_day_reference(t in instant(), d in span()) {
        let cal = national();
        prop_assert_eq!(cal.add_working_secs(t, d).unwrap(), reference::add_working_secs(cal, t, d).unwrap());
    }

    #[test]
    fn between_matches_the_reference(a in instant(), b in instant()) {
        let cal = national();
        prop_assert_eq!(cal.working_secs_between(a, b).unwrap(), reference::working_secs_between(cal, a, b).unwrap());
    }

    #[test]
    fn add_is_associative(t in instant(), a in span(), b in span()) {
        let cal = national();
        let stepwise = cal.add_working_secs(cal.add_working_secs(t, a).unwrap(), b).unwrap();
        prop_assert_eq!(stepwise, cal.add_working_secs(t, a + b).unwrap());
    }

    #[test]
    fn between_inverts_add(t in instant(), d in span()) {
        let cal = national();
        prop_assert_eq!(cal.working_secs_between(t, cal.add_working_secs(t, d).unwrap()).unwrap(), d);
    }

    #[test]
    fn subtraction_inverts_add(t in instant(), d in 1i64..100 * 8 * 3600) {
        let cal = national();
        let later = cal.add_working_secs(t, d).unwrap();
        let back = cal.add_working_secs(later, -d).unwrap();
        // Back lands on the earliest instant with the same working time as `t`.
        prop_assert_eq!(cal.working_secs_between(back, t).unwrap(), 0);
        prop_assert!(back <= t.max(back));
    }

    #[test]
    fn add_is_monotonic(t in instant(), a in span(), b in span()) {
        let cal = national();
        let (lo, hi) = (a.min(b), a.max(b));
        prop_assert!(cal.add_working_secs(t, lo).unwrap() <= cal.add_working_secs(t, hi).unwrap());
        prop_assert!(cal.add_working_secs(t, a).unwrap() <= cal.add_working_secs(t + 3600, a).unwrap());
    }

    #[test]
    fn results_fall_in_working_time(t in instant(), d in 1i64..250 * 8 * 3600) {
        let cal = national();
        let due = cal.add_working_secs(t, d).unwrap();
        // A result is the end of a worked second: the second before it is working time.
        prop_assert!(cal.is_working_ts(due - 1).unwrap());
        let start = cal.next_working_ts(t).unwrap();
        prop_assert!(cal.is_working_ts(start).unwrap());
        prop_assert!(start >= t);
    }

    #[test]
    fn closures_round_trip(t in instant(), d in span()) {
        static CAL: OnceLock<Calendar> = OnceLock::new();
        let cal = CAL.get_or_init(storm_many);
        let due = cal.add_working_secs(t, d).unwrap();
        prop_assert_eq!(due, reference::add_working_secs(cal, t, d).unwrap());
        prop_assert_eq!(cal.working_secs_between(t, due).unwrap(), d);
    }
}

/// A calendar with a closure in every month of 2000–2030, at varying times.
fn storm_many() -> Calendar {
    let mut b = CalendarBuilder::national().years(1999, 2032);
    for year in 2000..=2030 {
        for month in 1..=12u32 {
            let day = 1 + (year as u32 * 7 + month * 3) % 27;
            let from = NaiveDate::from_ymd_opt(year, month, day)
                .unwrap()
                .and_hms_opt(8 + month % 8, 17, 0)
                .unwrap()
                .and_utc()
                - chrono::TimeDelta::hours(7);
            let to = from + chrono::TimeDelta::minutes(90 + 301 * (month as i64 % 5));
            b = b.closure(Closure {
                from,
                to,
                reason: format!("closure {year}-{month}"),
            });
        }
    }
    b.build().unwrap()
}
