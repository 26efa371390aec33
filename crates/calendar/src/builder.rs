//! Builds a flattened [`Calendar`] from layers: national holidays and schedules, then
//! province and office days, hours and closures.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;

use crate::calendar::{Calendar, Closure};
use crate::hours::{Session, WeekHours, DAY_SECS};
use crate::schedule::{self, YearSchedule};
use crate::zone::Zone;
use crate::{CalendarError, DayNote};

/// Years a calendar covers unless told otherwise: the range the holiday rules support.
pub const DEFAULT_YEARS: (i32, i32) = (1900, 2100);

/// The default time zone (UTC+7, no DST since 1975).
pub const DEFAULT_TZ: Tz = chrono_tz::Asia::Ho_Chi_Minh;

/// Collects the layers of a calendar; [`CalendarBuilder::build`] flattens them.
#[derive(Debug, Clone)]
pub struct CalendarBuilder {
    pub(crate) name: String,
    pub(crate) tz: Tz,
    pub(crate) years: (i32, i32),
    pub(crate) hours: WeekHours,
    pub(crate) national: bool,
    pub(crate) schedules: Vec<YearSchedule>,
    /// Local days, applied in insertion order over the national ones (later layers win).
    pub(crate) days: BTreeMap<NaiveDate, DayNote>,
    pub(crate) closures: Vec<Closure>,
}

impl Default for CalendarBuilder {
    fn default() -> Self {
        CalendarBuilder::national()
    }
}

impl CalendarBuilder {
    /// The Vietnamese national civil-service calendar: Monday–Friday 07:30–11:30 and
    /// 13:00–17:00, holidays by rule, official yearly schedules shipped with dunghan.
    pub fn national() -> Self {
        CalendarBuilder {
            name: "vn".into(),
            tz: DEFAULT_TZ,
            years: DEFAULT_YEARS,
            hours: WeekHours::default(),
            national: true,
            schedules: schedule::builtin(),
            days: BTreeMap::new(),
            closures: Vec::new(),
        }
    }

    /// A calendar with no holidays at all: only the weekly hours (tests and baselines).
    pub fn plain() -> Self {
        CalendarBuilder {
            national: false,
            schedules: Vec::new(),
            name: "plain".into(),
            ..CalendarBuilder::national()
        }
    }

    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    pub fn timezone(mut self, tz: Tz) -> Self {
        self.tz = tz;
        self
    }

    /// Years to precompute (inclusive).
    pub fn years(mut self, first: i32, last: i32) -> Self {
        self.years = (first, last);
        self
    }

    pub fn hours(mut self, hours: WeekHours) -> Self {
        self.hours = hours;
        self
    }

    /// Adds an official yearly schedule; it replaces the rule-generated days of its year.
    pub fn schedule(mut self, schedule: YearSchedule) -> Self {
        self.schedules.push(schedule);
        self
    }

    /// Adds a local day (a day off or a working day) over the national ones.
    pub fn day(mut self, note: DayNote) -> Self {
        self.days.insert(note.date, note);
        self
    }

    /// Adds a closure of the office.
    pub fn closure(mut self, closure: Closure) -> Self {
        self.closures.push(closure);
        self
    }

    /// Flattens the layers into per-day sessions with prefix sums.
    pub fn build(&self) -> Result<Calendar, CalendarError> {
        let (first, last) = self.years;
        if !(1900..=2200).contains(&first) || last < first || last > 2200 {
            return Err(CalendarError::Invalid {
                origin: self.name.clone(),
                field: "years".into(),
                message: format!("{first}–{last} is not a range of years within 1900–2200"),
            });
        }
        let mut notes = BTreeMap::new();
        if self.national {
            for year in first..=last {
                for note in schedule::national_days(year, &self.schedules) {
                    notes.insert(note.date, note);
                }
            }
        }
        for (date, note) in &self.days {
            if (first..=last).contains(&date.year()) {
                notes.insert(*date, note.clone());
            }
        }
        let start = NaiveDate::from_ymd_opt(first, 1, 1).expect("valid");
        let end = NaiveDate::from_ymd_opt(last, 12, 31).expect("valid");
        let mut days: Vec<Vec<Session>> = start
            .iter_days()
            .take_while(|d| *d <= end)
            .map(|date| {
                let weekly = self.hours.on(date.weekday());
                match notes.get(&date) {
                    Some(note) if note.working() && weekly.is_empty() => {
                        self.hours.swapped().to_vec()
                    }
                    Some(note) if !note.working() => Vec::new(),
                    _ => weekly.to_vec(),
                }
            })
            .collect();
        let mut closures = self.closures.clone();
        closures.sort_by_key(|c| c.from);
        let epoch = start
            .and_hms_opt(0, 0, 0)
            .expect("valid")
            .and_utc()
            .timestamp();
        let zone = Zone::new(self.tz, first, last);
        for c in &closures {
            if c.to <= c.from {
                return Err(CalendarError::Invalid {
                    origin: self.name.clone(),
                    field: "closure".into(),
                    message: format!("closure `{}` ends before it starts", c.reason),
                });
            }
            let a = zone.local_secs(c.from.timestamp()) - epoch;
            let b = zone.local_secs(c.to.timestamp()) - epoch;
            let day_secs = DAY_SECS as i64;
            let first_day = a.div_euclid(day_secs).max(0);
            let last_day = (b - 1).div_euclid(day_secs).min(days.len() as i64 - 1);
            for day in first_day..=last_day {
                let lo = (a - day * day_secs).clamp(0, day_secs) as u32;
                let hi = (b - day * day_secs).clamp(0, day_secs) as u32;
                let sessions = &mut days[day as usize];
                *sessions = cut(sessions, lo, hi);
            }
        }
        let weekly = std::array::from_fn(|i| {
            self.hours
                .on(chrono::Weekday::try_from(i as u8).expect("weekday"))
                .to_vec()
        });
        Ok(Calendar::assemble(
            self.name.clone(),
            zone,
            first,
            last,
            days,
            weekly,
            notes,
            closures,
            self.hours.day_length(),
        ))
    }
}

/// Removes `[lo, hi)` from a day's sessions.
fn cut(sessions: &[Session], lo: u32, hi: u32) -> Vec<Session> {
    let mut out = Vec::with_capacity(sessions.len() + 1);
    for s in sessions {
        if s.end <= lo || s.start >= hi {
            out.push(*s);
            continue;
        }
        if s.start < lo {
            out.push(Session {
                start: s.start,
                end: lo,
            });
        }
        if hi < s.end {
            out.push(Session {
                start: hi,
                end: s.end,
            });
        }
    }
    out
}
