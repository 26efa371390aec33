//! Official yearly civil-service schedules (holidays, days off, swapped Saturdays) read from TOML.
//!
//! Each year the Prime Minister fixes, and a ministry announces, the exact days civil servants
//! are off: which days around Tết and 2/9, compensatory days, weekdays swapped for Saturdays.
//! Such a schedule replaces the rule-generated days of `holidays` for its year. The files are
//! data that operations update when an announcement comes; the repository's own files under
//! `data/vn/` are built in.
//!
//! ```toml
//! year = 2026
//! source = "the announcement the days come from"
//!
//! [[day]]
//! date = 2026-02-16          # a TOML local date, or the string "2026-02-16"
//! kind = "holiday"           # holiday | compensatory | day-off | swapped-workday
//! name_vi = "Tết Nguyên đán"
//! name_en = "Lunar New Year"
//! ```
//!
//! A file lists every holiday (also one on a weekend, so its name shows), every compensatory
//! day, every extra day off and every weekend day worked in exchange.

use crate::day::{DayKind, DayNote};
use crate::error::CalendarError;
use crate::holidays;
use chrono::{Datelike, NaiveDate, Weekday};
use serde::Deserialize;

/// The first and last years a schedule may describe: the range the rule generator covers.
const YEARS: std::ops::RangeInclusive<i32> = 1900..=2100;

/// The official days off and swapped working days of one year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearSchedule {
    /// The Gregorian year; every day lies in it.
    pub year: i32,
    /// The document that announced the schedule, for explanations and audits.
    pub source: String,
    /// The days, sorted by date, one note per date.
    pub days: Vec<DayNote>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRepr {
    year: i32,
    source: String,
    day: Vec<DayRepr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DayRepr {
    // A `toml::Value` so that both a TOML date and a quoted date are accepted.
    date: toml::Value,
    kind: String,
    name_vi: String,
    name_en: String,
}

const KINDS: &str = "`holiday`, `compensatory`, `day-off` or `swapped-workday`";

/// Parses one yearly schedule; `origin` (usually the file name) prefixes every error.
pub fn parse(text: &str, origin: &str) -> Result<YearSchedule, CalendarError> {
    let repr: FileRepr = toml::from_str(text).map_err(|e| CalendarError::File {
        origin: origin.to_owned(),
        message: toml_message(text, &e),
    })?;
    let invalid = |field: String, message: String| CalendarError::Invalid {
        origin: origin.to_owned(),
        field,
        message,
    };

    if !YEARS.contains(&repr.year) {
        return Err(invalid(
            "year".into(),
            format!(
                "{} is outside the supported years {}–{}",
                repr.year,
                YEARS.start(),
                YEARS.end()
            ),
        ));
    }
    if repr.source.trim().is_empty() {
        return Err(invalid(
            "source".into(),
            "must name the document that announced the schedule".into(),
        ));
    }
    if repr.day.is_empty() {
        return Err(invalid(
            "day".into(),
            "a yearly schedule lists at least the year's holidays".into(),
        ));
    }

    let mut days: Vec<DayNote> = Vec::with_capacity(repr.day.len());
    for (i, entry) in repr.day.into_iter().enumerate() {
        let field = |name: &str| format!("day[{i}].{name}");
        let date = parse_date(&entry.date).map_err(|m| invalid(field("date"), m))?;
        if date.year() != repr.year {
            return Err(invalid(
                field("date"),
                format!("{date} is not in the schedule's year {}", repr.year),
            ));
        }
        let kind = parse_kind(&entry.kind).map_err(|m| invalid(field("kind"), m))?;
        let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
        match kind {
            DayKind::SwappedWorkday if !weekend => {
                return Err(invalid(
                    field("kind"),
                    format!(
                        "{date} is a {}, already a working day; `swapped-workday` is for a Saturday or Sunday worked",
                        crate::hours::weekday_en(date.weekday())
                    ),
                ))
            }
            DayKind::Compensatory | DayKind::DayOff if weekend => {
                return Err(invalid(
                    field("kind"),
                    format!(
                        "{date} is a {}, already a rest day; `{}` is for a weekday off",
                        crate::hours::weekday_en(date.weekday()),
                        entry.kind.trim()
                    ),
                ))
            }
            _ => {}
        }
        for (name, value) in [("name_vi", &entry.name_vi), ("name_en", &entry.name_en)] {
            if value.trim().is_empty() {
                return Err(invalid(field(name), format!("{date}: must not be empty")));
            }
        }
        if days.iter().any(|d| d.date == date) {
            return Err(invalid(
                field("date"),
                format!("{date} is listed twice; give each date one entry"),
            ));
        }
        days.push(DayNote::new(date, kind, &entry.name_vi, &entry.name_en));
    }
    days.sort_by_key(|note| note.date);
    Ok(YearSchedule {
        year: repr.year,
        source: repr.source,
        days,
    })
}

/// A one-line TOML error with its line and column, rather than toml's multi-line snippet.
fn toml_message(text: &str, error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            format!("line {line}, column {column}: {}", error.message().trim())
        }
        None => error.message().trim().to_owned(),
    }
}

fn parse_date(value: &toml::Value) -> Result<NaiveDate, String> {
    let expected = "expected a date such as 2026-02-16";
    match value {
        toml::Value::Datetime(dt) => match (dt.date, dt.time, dt.offset) {
            (Some(date), None, None) => NaiveDate::from_ymd_opt(
                i32::from(date.year),
                u32::from(date.month),
                u32::from(date.day),
            )
            .ok_or_else(|| format!("{dt} is not a calendar date")),
            _ => Err(format!("{dt} carries a time or offset; {expected}")),
        },
        toml::Value::String(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map_err(|_| format!("\"{s}\" is not a date; {expected}")),
        other => Err(format!("{other} is a {}; {expected}", other.type_str())),
    }
}

fn parse_kind(kind: &str) -> Result<DayKind, String> {
    match kind.trim() {
        "holiday" => Ok(DayKind::Holiday),
        "compensatory" => Ok(DayKind::Compensatory),
        "day-off" => Ok(DayKind::DayOff),
        "swapped-workday" => Ok(DayKind::SwappedWorkday),
        local @ ("local-day-off" | "local-workday") => Err(format!(
            "`{local}` belongs in a local calendar, not in the national yearly schedule; expected {KINDS}"
        )),
        other => Err(format!("unknown kind `{other}`; expected {KINDS}")),
    }
}

/// The repository's schedule files, embedded at build time.
const BUILTIN: &[(&str, &str)] = &[
    ("data/vn/2020.toml", include_str!("../data/vn/2020.toml")),
    ("data/vn/2021.toml", include_str!("../data/vn/2021.toml")),
    ("data/vn/2022.toml", include_str!("../data/vn/2022.toml")),
    ("data/vn/2023.toml", include_str!("../data/vn/2023.toml")),
    ("data/vn/2024.toml", include_str!("../data/vn/2024.toml")),
    ("data/vn/2025.toml", include_str!("../data/vn/2025.toml")),
    ("data/vn/2026.toml", include_str!("../data/vn/2026.toml")),
];

/// The official schedules shipped with the crate, oldest first.
///
/// # Panics
///
/// Never in a tested build: a built-in file that does not parse is a bug caught by the tests.
pub fn builtin() -> Vec<YearSchedule> {
    BUILTIN
        .iter()
        .map(|(origin, text)| {
            parse(text, origin).unwrap_or_else(|e| panic!("built-in schedule is invalid: {e}"))
        })
        .collect()
}

/// The national days of `year`: the given schedule for that year (the last one wins, so
/// later files can correct earlier ones), else the days generated by rule.
pub fn national_days(year: i32, schedules: &[YearSchedule]) -> Vec<DayNote> {
    schedules
        .iter()
        .rev()
        .find(|s| s.year == year)
        .map_or_else(|| holidays::rule_days(year), |s| s.days.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn builtin_year(year: i32) -> YearSchedule {
        builtin().into_iter().find(|s| s.year == year).unwrap()
    }

    /// (weekdays not worked, weekend days worked): what deadline arithmetic sees of a year.
    fn working_changes(days: &[DayNote]) -> (BTreeSet<NaiveDate>, BTreeSet<NaiveDate>) {
        let weekend = |d: NaiveDate| matches!(d.weekday(), Weekday::Sat | Weekday::Sun);
        let off = days
            .iter()
            .filter(|n| !n.working() && !weekend(n.date))
            .map(|n| n.date)
            .collect();
        let worked = days
            .iter()
            .filter(|n| n.working() && weekend(n.date))
            .map(|n| n.date)
            .collect();
        (off, worked)
    }

    fn set(year: i32, days: &[(u32, u32)]) -> BTreeSet<NaiveDate> {
        days.iter()
            .map(|&(day, month)| d(year, month, day))
            .collect()
    }

    fn assert_year(year: i32, off: &[(u32, u32)], worked: &[(u32, u32)]) {
        let (got_off, got_worked) = working_changes(&builtin_year(year).days);
        assert_eq!(got_off, set(year, off), "{year}: weekdays off");
        assert_eq!(got_worked, set(year, worked), "{year}: weekend days worked");
    }

    #[test]
    fn builtin_files_parse_and_cover_2020_to_2026() {
        let all = builtin();
        let years: Vec<i32> = all.iter().map(|s| s.year).collect();
        assert_eq!(years, (2020..=2026).collect::<Vec<_>>());
        for s in &all {
            assert!(!s.source.is_empty());
            assert!(s.days.windows(2).all(|w| w[0].date < w[1].date));
        }
    }

    #[test]
    fn builtin_2024_matches_the_official_schedule() {
        let off = [
            (1, 1),
            (8, 2),
            (9, 2),
            (12, 2),
            (13, 2),
            (14, 2),
            (18, 4),
            (29, 4),
            (30, 4),
            (1, 5),
            (2, 9),
            (3, 9),
        ];
        assert_year(2024, &off, &[(4, 5)]);
    }

    #[test]
    fn builtin_2025_matches_the_official_schedule() {
        let off = [
            (1, 1),
            (27, 1),
            (28, 1),
            (29, 1),
            (30, 1),
            (31, 1),
            (7, 4),
            (30, 4),
            (1, 5),
            (2, 5),
            (1, 9),
            (2, 9),
        ];
        assert_year(2025, &off, &[(26, 4)]);
    }

    #[test]
    fn builtin_2026_matches_the_official_schedule() {
        let off = [
            (1, 1),
            (2, 1),
            (16, 2),
            (17, 2),
            (18, 2),
            (19, 2),
            (20, 2),
            (27, 4),
            (30, 4),
            (1, 5),
            (1, 9),
            (2, 9),
            (24, 11),
        ];
        assert_year(2026, &off, &[(10, 1)]);
        let days = builtin_year(2026).days;
        let hung = days.iter().find(|n| n.date == d(2026, 4, 26)).unwrap();
        assert_eq!(hung.kind, DayKind::Holiday);
        let comp = days.iter().find(|n| n.date == d(2026, 4, 27)).unwrap();
        assert_eq!(comp.kind, DayKind::Compensatory);
    }

    #[test]
    fn builtin_2020_to_2023_as_reported() {
        assert_year(
            2020,
            &[
                (1, 1),
                (23, 1),
                (24, 1),
                (27, 1),
                (28, 1),
                (29, 1),
                (2, 4),
                (30, 4),
                (1, 5),
                (2, 9),
            ],
            &[],
        );
        assert_year(
            2021,
            &[
                (1, 1),
                (10, 2),
                (11, 2),
                (12, 2),
                (15, 2),
                (16, 2),
                (21, 4),
                (30, 4),
                (3, 5),
                (2, 9),
                (3, 9),
            ],
            &[],
        );
        assert_year(
            2022,
            &[
                (3, 1),
                (31, 1),
                (1, 2),
                (2, 2),
                (3, 2),
                (4, 2),
                (11, 4),
                (2, 5),
                (3, 5),
                (1, 9),
                (2, 9),
            ],
            &[],
        );
        assert_year(
            2023,
            &[
                (2, 1),
                (20, 1),
                (23, 1),
                (24, 1),
                (25, 1),
                (26, 1),
                (1, 5),
                (2, 5),
                (3, 5),
                (1, 9),
                (4, 9),
            ],
            &[],
        );
    }

    #[test]
    fn builtin_2022_agrees_with_the_rules() {
        // A year where the Prime Minister chose exactly what the Labour Code's rules give.
        assert_eq!(
            working_changes(&builtin_year(2022).days),
            working_changes(&holidays::rule_days(2022))
        );
    }

    #[test]
    fn national_days_prefers_the_last_schedule_for_the_year() {
        let all = builtin();
        assert_eq!(national_days(2024, &all), builtin_year(2024).days);
        assert_eq!(national_days(2027, &all), holidays::rule_days(2027));
        assert_eq!(national_days(2024, &[]), holidays::rule_days(2024));
        let replacement = parse(
            "year = 2024\nsource = \"correction\"\n[[day]]\ndate = 2024-01-01\nkind = \"holiday\"\nname_vi = \"a\"\nname_en = \"b\"\n",
            "fix.toml",
        )
        .unwrap();
        let with_fix = [all, vec![replacement.clone()]].concat();
        assert_eq!(national_days(2024, &with_fix), replacement.days);
    }

    const HEAD: &str = "year = 2026\nsource = \"test\"\n";

    fn parse_day(body: &str) -> Result<YearSchedule, CalendarError> {
        parse(&format!("{HEAD}[[day]]\n{body}"), "2026.toml")
    }

    fn invalid(field: &str, needle: &str, result: Result<YearSchedule, CalendarError>) {
        match result {
            Err(CalendarError::Invalid {
                origin,
                field: f,
                message,
            }) => {
                assert_eq!(origin, "2026.toml");
                assert_eq!(f, field);
                assert!(
                    message.contains(needle),
                    "message {message:?} lacks {needle:?}"
                );
            }
            other => panic!("expected an Invalid error on {field}, got {other:?}"),
        }
    }

    #[test]
    fn accepts_a_quoted_date() {
        let s = parse_day(
            "date = \"2026-02-16\"\nkind = \"holiday\"\nname_vi = \"Tết\"\nname_en = \"Tet\"\n",
        )
        .unwrap();
        assert_eq!(s.days[0].date, d(2026, 2, 16));
    }

    #[test]
    fn rejects_an_unknown_kind() {
        let r =
            parse_day("date = 2026-02-16\nkind = \"vacation\"\nname_vi = \"x\"\nname_en = \"x\"\n");
        invalid("day[0].kind", "unknown kind `vacation`", r);
        let r = parse_day(
            "date = 2026-02-16\nkind = \"local-day-off\"\nname_vi = \"x\"\nname_en = \"x\"\n",
        );
        invalid("day[0].kind", "local calendar", r);
    }

    #[test]
    fn rejects_a_date_in_another_year() {
        let r =
            parse_day("date = 2025-02-16\nkind = \"holiday\"\nname_vi = \"x\"\nname_en = \"x\"\n");
        invalid(
            "day[0].date",
            "2025-02-16 is not in the schedule's year 2026",
            r,
        );
    }

    #[test]
    fn rejects_a_duplicated_date() {
        let day = "date = 2026-02-16\nkind = \"holiday\"\nname_vi = \"x\"\nname_en = \"x\"\n";
        let r = parse(&format!("{HEAD}[[day]]\n{day}[[day]]\n{day}"), "2026.toml");
        invalid("day[1].date", "2026-02-16 is listed twice", r);
    }

    #[test]
    fn rejects_kinds_on_the_wrong_day_of_the_week() {
        let r = parse_day(
            "date = 2026-01-09\nkind = \"swapped-workday\"\nname_vi = \"x\"\nname_en = \"x\"\n",
        );
        invalid(
            "day[0].kind",
            "2026-01-09 is a Friday, already a working day",
            r,
        );
        let r =
            parse_day("date = 2026-01-10\nkind = \"day-off\"\nname_vi = \"x\"\nname_en = \"x\"\n");
        invalid(
            "day[0].kind",
            "2026-01-10 is a Saturday, already a rest day",
            r,
        );
    }

    #[test]
    fn rejects_bad_dates_years_and_empty_fields() {
        let r = parse_day(
            "date = 2026-02-16T08:00:00\nkind = \"holiday\"\nname_vi = \"x\"\nname_en = \"x\"\n",
        );
        invalid("day[0].date", "carries a time", r);
        let r = parse_day(
            "date = \"16/02/2026\"\nkind = \"holiday\"\nname_vi = \"x\"\nname_en = \"x\"\n",
        );
        invalid("day[0].date", "\"16/02/2026\" is not a date", r);
        let r =
            parse_day("date = 2026-02-16\nkind = \"holiday\"\nname_vi = \" \"\nname_en = \"x\"\n");
        invalid("day[0].name_vi", "must not be empty", r);
        let r = parse("year = 2026\nsource = \"\"\nday = []\n", "2026.toml");
        invalid("source", "must name the document", r);
        let r = parse("year = 2026\nsource = \"s\"\nday = []\n", "2026.toml");
        invalid("day", "at least", r);
        let r = parse("year = 1850\nsource = \"s\"\nday = []\n", "2026.toml");
        invalid("year", "1850 is outside", r);
    }

    #[test]
    fn toml_errors_name_the_origin_and_the_key() {
        let r = parse(&format!("{HEAD}colour = \"red\"\n"), "2026.toml");
        let Err(CalendarError::File { origin, message }) = r else {
            panic!("expected a File error, got {r:?}");
        };
        assert_eq!(origin, "2026.toml");
        assert!(
            message.contains("line 3") && message.contains("colour"),
            "{message}"
        );

        let r = parse_day("date = 2026-02-16\nkind = \"holiday\"\nname_vi = \"x\"\nname_en = \"x\"\nnote = \"y\"\n");
        let Err(CalendarError::File { message, .. }) = r else {
            panic!("expected a File error, got {r:?}");
        };
        assert!(message.contains("note"), "{message}");

        let r = parse("year = 2026\nsource = \n", "2026.toml");
        let err = r.unwrap_err();
        assert!(err.to_string().starts_with("2026.toml: line 2"), "{err}");
        assert!(!err.to_string().contains('\n'), "{err}");
    }
}
