//! Procedure catalog and deadline policy: the four worked examples of domain.md §8, versions
//! by effective date, and catalog validation.

use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate};
use dunghan_calendar::{Calendar, CalendarBuilder};
use dunghan_core::deadline::{paused_deadline, procedure_deadlines};
use dunghan_core::{Catalog, CoreError, StartNote, TimeAllowed};

const SAMPLE: &str = include_str!("../../../deploy/catalog/procedures.toml");

fn cal() -> &'static Calendar {
    static CAL: OnceLock<Calendar> = OnceLock::new();
    CAL.get_or_init(|| {
        CalendarBuilder::national()
            .years(2010, 2030)
            .build()
            .unwrap()
    })
}

fn catalog() -> Catalog {
    Catalog::parse(SAMPLE, "procedures.toml").unwrap()
}

fn at(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text).unwrap().timestamp()
}

fn show(t: i64) -> String {
    cal()
        .local(DateTime::from_timestamp(t, 0).unwrap())
        .format("%Y-%m-%dT%H:%M%:z")
        .to_string()
}

fn one_procedure(statutory: &str, extra: &str) -> String {
    format!(
        "[[procedure]]\ncode = \"9.999\"\nname = \"Thử\"\neffective_from = 2025-01-01\nstatutory = {statutory}\n{extra}"
    )
}

fn deadline_for(statutory: &str, extra: &str, received: &str) -> dunghan_core::Deadlines {
    let catalog = Catalog::parse(&one_procedure(statutory, extra), "t.toml").unwrap();
    let p = catalog
        .lookup("9.999", NaiveDate::from_ymd_opt(2026, 1, 1).unwrap())
        .unwrap();
    procedure_deadlines(cal(), p, at(received)).unwrap()
}

#[test]
fn example_1_three_working_days_over_tet() {
    let d = deadline_for("{ working_days = 3 }", "", "2026-02-13T16:20:00+07:00");
    assert_eq!(show(d.appointment), "2026-02-25T16:20+07:00");
    assert_eq!(d.start_note, StartNote::AsReceived);
}

#[test]
fn example_2_swapped_saturday() {
    let d = deadline_for("{ working_days = 1 }", "", "2026-01-10T09:00:00+07:00");
    assert_eq!(show(d.appointment), "2026-01-12T09:00+07:00");
}

#[test]
fn example_3_supplement_pause() {
    let d = deadline_for("{ working_days = 5 }", "", "2026-10-05T10:00:00+07:00");
    assert_eq!(show(d.appointment), "2026-10-12T10:00+07:00");
    let moved = paused_deadline(
        cal(),
        d.appointment,
        at("2026-10-06T10:00:00+07:00"),
        at("2026-10-08T10:00:00+07:00"),
    )
    .unwrap();
    assert_eq!(show(moved), "2026-10-14T10:00+07:00");
}

#[test]
fn example_4_certification_after_the_cutoff() {
    let catalog = catalog();
    let p = catalog
        .lookup("2.000815", NaiveDate::from_ymd_opt(2026, 10, 5).unwrap())
        .unwrap();
    let d = procedure_deadlines(cal(), p, at("2026-10-05T16:00:00+07:00")).unwrap();
    assert_eq!(show(d.appointment), "2026-10-06T17:00+07:00");
    assert_eq!(d.start_note, StartNote::AfterCutoff { cutoff: 15 * 3600 });
    // Before the cut-off it is the same day.
    let d = procedure_deadlines(cal(), p, at("2026-10-05T14:59:00+07:00")).unwrap();
    assert_eq!(show(d.appointment), "2026-10-05T17:00+07:00");
}

#[test]
fn received_outside_hours_counts_from_the_next_session() {
    let d = deadline_for("{ working_hours = 2 }", "", "2026-10-09T18:30:00+07:00");
    assert_eq!(d.start_note, StartNote::OutsideWorkingHours);
    assert_eq!(show(d.start), "2026-10-12T07:30+07:00");
    assert_eq!(show(d.appointment), "2026-10-12T09:30+07:00");
}

#[test]
fn versions_follow_the_receipt_date() {
    let catalog = catalog();
    let old = catalog
        .lookup("2.000488", NaiveDate::from_ymd_opt(2025, 6, 30).unwrap())
        .unwrap();
    let new = catalog
        .lookup("2.000488", NaiveDate::from_ymd_opt(2025, 7, 1).unwrap())
        .unwrap();
    assert_eq!(old.reduced, Some(TimeAllowed::WorkingDays(10.0)));
    assert_eq!(new.reduced, Some(TimeAllowed::WorkingDays(5.0)));
    let err = catalog
        .lookup("2.000488", NaiveDate::from_ymd_opt(2018, 1, 1).unwrap())
        .unwrap_err();
    assert!(matches!(err, CoreError::NotInForce { .. }), "{err}");
    assert_eq!(
        catalog.lookup("0.000", NaiveDate::MAX).unwrap_err(),
        CoreError::UnknownProcedure("0.000".into())
    );
}

#[test]
fn statutory_reduced_and_step_deadlines() {
    let catalog = catalog();
    let p = catalog
        .lookup("2.000488", NaiveDate::from_ymd_opt(2026, 10, 5).unwrap())
        .unwrap();
    let d = procedure_deadlines(cal(), p, at("2026-10-05T10:00:00+07:00")).unwrap();
    assert_eq!(show(d.appointment), "2026-10-12T10:00+07:00");
    assert_eq!(show(d.statutory), "2026-11-02T10:00+07:00");
    let steps: Vec<(String, String)> = d
        .steps
        .iter()
        .map(|s| (s.id.clone(), show(s.due)))
        .collect();
    assert_eq!(
        steps,
        [
            ("tham-dinh".to_owned(), "2026-10-08T10:00+07:00".to_owned()),
            ("phe-duyet".to_owned(), "2026-10-09T15:30+07:00".to_owned())
        ]
    );
}

#[test]
fn end_of_day_calendar_days_and_months() {
    let d = deadline_for(
        "{ working_days = 2 }",
        "anchor = \"end-of-day\"",
        "2026-10-05T10:00:00+07:00",
    );
    assert_eq!(show(d.appointment), "2026-10-07T17:00+07:00");
    let d = deadline_for("{ calendar_days = 5 }", "", "2026-10-05T10:00:00+07:00");
    assert_eq!(
        show(d.appointment),
        "2026-10-12T17:00+07:00",
        "Sat 10/10 rolls to the end of Mon"
    );
    let d = deadline_for("{ months = 1 }", "", "2026-10-05T10:00:00+07:00");
    assert_eq!(show(d.appointment), "2026-11-05T10:00+07:00");
}

fn parse_err(text: &str) -> String {
    Catalog::parse(text, "bad.toml").unwrap_err().to_string()
}

#[test]
fn catalog_errors_name_the_procedure_and_field() {
    let e = parse_err(&one_procedure(
        "{ working_days = 5 }",
        "reduced = { working_days = 7 }",
    ));
    assert!(
        e.contains("9.999") && e.contains("`reduced`") && e.contains("longer than the statutory"),
        "{e}"
    );
    let e = parse_err(&one_procedure(
        "{ working_days = 2 }",
        "[[procedure.steps]]\nid = \"a\"\ndepartment = \"d\"\nallotted = { working_days = 3 }",
    ));
    assert!(e.contains("`steps`") && e.contains("add up to 3"), "{e}");
    let e = parse_err(&one_procedure("{ working_days = -1 }", ""));
    assert!(
        e.contains("`statutory`") && e.contains("-1 working days"),
        "{e}"
    );
    let e = parse_err(&one_procedure("{ working_days = 99999 }", ""));
    assert!(e.contains("99999"), "{e}");
    let e = parse_err(&one_procedure("{ working_days = 1, months = 1 }", ""));
    assert!(e.contains("only one of"), "{e}");
    let e = parse_err(&one_procedure("{ weeks = 1 }", ""));
    assert!(e.contains("bad.toml") && e.contains("weeks"), "{e}");
    let e = parse_err(&one_procedure("{ working_days = 1 }", "colour = \"red\""));
    assert!(e.contains("colour"), "{e}");
    let e = parse_err(&one_procedure("{ working_days = 1 }", "cutoff = \"3pm\""));
    assert!(e.contains("`cutoff`") && e.contains("3pm"), "{e}");
    let twice = one_procedure("{ working_days = 1 }", "")
        + "\n"
        + &one_procedure("{ working_days = 2 }", "");
    assert!(parse_err(&twice).contains("same date"));
}

#[test]
fn sample_catalog_loads() {
    let catalog = catalog();
    assert!(catalog.len() >= 8);
    assert!(catalog
        .iter()
        .all(|p| !p.name.is_empty() && !p.agency.is_empty()));
}
