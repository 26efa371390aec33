//! Explanations: which days a computation skipped and why, and a year's special days.

use chrono::{Datelike, NaiveDate, Weekday};
use serde::Serialize;

use crate::calendar::Calendar;
use crate::hours::{clock, weekday_en, weekday_vi};
use crate::DayKind;

/// Why a day (or part of it) was not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// A weekly rest day (Saturday, Sunday).
    Weekend,
    Holiday,
    Compensatory,
    DayOff,
    LocalDayOff,
    /// The office was closed (storm, flood) for all or part of the day.
    Closure,
}

/// A date passed over by a computation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub date: NaiveDate,
    pub reason: SkipReason,
    /// Vietnamese description, e.g. "Tết Nguyên đán" or "Chủ Nhật".
    pub name_vi: String,
    /// English description.
    pub name_en: String,
    /// False when only part of the day was closed.
    pub whole_day: bool,
}

/// A date whose working status differs from plain Monday–Friday.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecialDay {
    pub date: NaiveDate,
    pub working: bool,
    pub kind: Option<DayKind>,
    pub name_vi: String,
    pub name_en: String,
}

impl Calendar {
    /// The dates from `from`'s local date to `to`'s that were wholly or partly not working
    /// time, each with its reason. O(days in the span): for explanations, not arithmetic.
    pub fn skipped_between(&self, from: i64, to: i64) -> Vec<Skipped> {
        let (a, b) = (self.local_date(from.min(to)), self.local_date(from.max(to)));
        a.iter_days()
            .take_while(|d| *d <= b)
            .filter_map(|date| self.skipped_on(date))
            .collect()
    }

    /// Why `date` is (partly) not working time, or `None` if it is an ordinary working day.
    pub fn skipped_on(&self, date: NaiveDate) -> Option<Skipped> {
        let sessions = self.sessions_on(date)?;
        let weekly = self.weekly_sessions(date.weekday());
        let note = self.notes.get(&date);
        let closure = self.closures.iter().find(|c| {
            let (from, to) = (self.local(c.from), self.local(c.to));
            from.date_naive() <= date && date <= (to - chrono::TimeDelta::seconds(1)).date_naive()
        });
        let skipped = |reason, name_vi: String, name_en: String, whole_day| {
            Some(Skipped {
                date,
                reason,
                name_vi,
                name_en,
                whole_day,
            })
        };
        if let Some(n) = note.filter(|n| !n.working()) {
            let reason = match n.kind {
                DayKind::Holiday => SkipReason::Holiday,
                DayKind::Compensatory => SkipReason::Compensatory,
                DayKind::DayOff => SkipReason::DayOff,
                _ => SkipReason::LocalDayOff,
            };
            return skipped(reason, n.name_vi.clone(), n.name_en.clone(), true);
        }
        let worked_by_exchange = note.is_some_and(|n| n.working());
        if weekly.is_empty() && !worked_by_exchange {
            return skipped(
                SkipReason::Weekend,
                weekday_vi(date.weekday()).to_owned(),
                weekday_en(date.weekday()).to_owned(),
                true,
            );
        }
        let c = closure?;
        let (from, to) = (self.local(c.from), self.local(c.to));
        let whole_day = sessions.is_empty();
        let span = format!(
            "{} {} – {} {}",
            from.format("%d/%m"),
            clock(chrono::Timelike::num_seconds_from_midnight(&from.time())),
            to.format("%d/%m"),
            clock(chrono::Timelike::num_seconds_from_midnight(&to.time())),
        );
        skipped(
            SkipReason::Closure,
            format!("Tạm dừng làm việc: {} ({span})", c.reason),
            format!("Office closed: {} ({span})", c.reason),
            whole_day,
        )
    }

    /// Every date of `year` whose working status differs from plain Monday–Friday, with its name.
    pub fn special_days(&self, year: i32) -> Vec<SpecialDay> {
        let Some(first) = NaiveDate::from_ymd_opt(year, 1, 1) else {
            return Vec::new();
        };
        first
            .iter_days()
            .take_while(|d| d.year() == year)
            .filter_map(|date| {
                let working = !self.sessions_on(date)?.is_empty();
                let plain = !matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
                if working == plain {
                    return None;
                }
                let note = self.notes.get(&date);
                let (name_vi, name_en) = match (note, self.skipped_on(date)) {
                    (Some(n), _) => (n.name_vi.clone(), n.name_en.clone()),
                    (None, Some(s)) => (s.name_vi, s.name_en),
                    (None, None) => (
                        "Ngày làm việc theo giờ làm việc địa phương".to_owned(),
                        "Working day by local hours".to_owned(),
                    ),
                };
                Some(SpecialDay {
                    date,
                    working,
                    kind: note.map(|n| n.kind),
                    name_vi,
                    name_en,
                })
            })
            .collect()
    }

    /// The local date of an instant.
    pub fn local_date(&self, t: i64) -> NaiveDate {
        crate::calendar::from_ts(self.local_secs(t)).date_naive()
    }
}
