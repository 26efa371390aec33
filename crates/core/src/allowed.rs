//! The time a procedure or a step is allowed, in the units procedures publish.

use std::fmt;

use dunghan_calendar::hours::{clock, parse_clock};
use serde::{Deserialize, Serialize};

/// Longest time any procedure may be allowed: ten years. Beyond it a value is a typo.
pub const MAX_WORKING_DAYS: f64 = 2_500.0;
const MAX_CALENDAR_DAYS: u32 = 3_660;
const MAX_MONTHS: u32 = 120;

/// Time allowed: working days (fractions allowed), working hours, calendar days, months, or
/// "same day, or the next working day if received at or after the cut-off".
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeAllowed {
    WorkingDays(f64),
    WorkingHours(f64),
    CalendarDays(u32),
    Months(u32),
    /// Cut-off in seconds after midnight.
    SameDay {
        cutoff: Option<u32>,
    },
}

/// The TOML shape: a table with exactly one key, e.g. `{ working_days = 5 }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeAllowedSpec {
    pub working_days: Option<f64>,
    pub working_hours: Option<f64>,
    pub calendar_days: Option<u32>,
    pub months: Option<u32>,
    pub same_day: Option<SameDaySpec>,
}

/// `same_day = { cutoff = "15:00" }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SameDaySpec {
    pub cutoff: Option<String>,
}

impl TimeAllowedSpec {
    /// Checks that exactly one unit is given with a sensible value.
    pub fn resolve(&self) -> Result<TimeAllowed, String> {
        let mut found = Vec::new();
        if let Some(n) = self.working_days {
            found.push(TimeAllowed::WorkingDays(n));
        }
        if let Some(n) = self.working_hours {
            found.push(TimeAllowed::WorkingHours(n));
        }
        if let Some(n) = self.calendar_days {
            found.push(TimeAllowed::CalendarDays(n));
        }
        if let Some(n) = self.months {
            found.push(TimeAllowed::Months(n));
        }
        if let Some(s) = &self.same_day {
            let cutoff = s.cutoff.as_deref().map(parse_clock).transpose()?;
            found.push(TimeAllowed::SameDay { cutoff });
        }
        match found.as_slice() {
            [one] => one.validate().map(|()| *one),
            [] => Err(
                "give one of working_days, working_hours, calendar_days, months, same_day".into(),
            ),
            _ => Err(
                "give only one of working_days, working_hours, calendar_days, months, same_day"
                    .into(),
            ),
        }
    }
}

impl TimeAllowed {
    /// Rejects negative, zero, non-finite and absurd amounts with a message naming the value.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |what: String, expected: &str| Err(format!("{what} is not {expected}"));
        match *self {
            TimeAllowed::WorkingDays(n) if !(n.is_finite() && n > 0.0 && n <= MAX_WORKING_DAYS) => {
                bad(
                    format!("{n} working days"),
                    &format!("a number of working days above 0 and at most {MAX_WORKING_DAYS}"),
                )
            }
            TimeAllowed::WorkingHours(n)
                if !(n.is_finite() && n > 0.0 && n <= MAX_WORKING_DAYS * 8.0) =>
            {
                bad(
                    format!("{n} working hours"),
                    &format!(
                        "a number of working hours above 0 and at most {}",
                        MAX_WORKING_DAYS * 8.0
                    ),
                )
            }
            TimeAllowed::CalendarDays(n) if n == 0 || n > MAX_CALENDAR_DAYS => bad(
                format!("{n} calendar days"),
                &format!("a number of days from 1 to {MAX_CALENDAR_DAYS}"),
            ),
            TimeAllowed::Months(n) if n == 0 || n > MAX_MONTHS => bad(
                format!("{n} months"),
                &format!("a number of months from 1 to {MAX_MONTHS}"),
            ),
            _ => Ok(()),
        }
    }

    /// Nominal length in working days (8-hour days; a same-day procedure counts as one),
    /// for comparing working-time amounts. `None` for calendar units.
    pub fn nominal_working_days(&self) -> Option<f64> {
        match *self {
            TimeAllowed::WorkingDays(n) => Some(n),
            TimeAllowed::WorkingHours(h) => Some(h / 8.0),
            TimeAllowed::SameDay { .. } => Some(1.0),
            _ => None,
        }
    }

    /// Nominal length in calendar days (30-day months), for comparing calendar amounts.
    pub fn nominal_calendar_days(&self) -> Option<u32> {
        match *self {
            TimeAllowed::CalendarDays(n) => Some(n),
            TimeAllowed::Months(n) => Some(n * 30),
            _ => None,
        }
    }

    /// Vietnamese wording for a slip, e.g. "5 ngày làm việc".
    pub fn to_vietnamese(&self) -> String {
        match *self {
            TimeAllowed::WorkingDays(n) => format!("{} ngày làm việc", trim(n)),
            TimeAllowed::WorkingHours(n) => format!("{} giờ làm việc", trim(n)),
            TimeAllowed::CalendarDays(n) => format!("{n} ngày"),
            TimeAllowed::Months(n) => format!("{n} tháng"),
            TimeAllowed::SameDay { cutoff: Some(c) } => {
                format!(
                    "trong ngày (nhận sau {} trả ngày làm việc tiếp theo)",
                    clock(c)
                )
            }
            TimeAllowed::SameDay { cutoff: None } => "trong ngày".into(),
        }
    }
}

impl fmt::Display for TimeAllowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TimeAllowed::WorkingDays(n) => write!(f, "{} working day{}", trim(n), plural(n)),
            TimeAllowed::WorkingHours(n) => write!(f, "{} working hour{}", trim(n), plural(n)),
            TimeAllowed::CalendarDays(n) => write!(f, "{n} calendar day{}", plural(n as f64)),
            TimeAllowed::Months(n) => write!(f, "{n} month{}", plural(n as f64)),
            TimeAllowed::SameDay { cutoff: Some(c) } => {
                write!(
                    f,
                    "same day (next working day if received at or after {})",
                    clock(c)
                )
            }
            TimeAllowed::SameDay { cutoff: None } => write!(f, "same day"),
        }
    }
}

fn plural(n: f64) -> &'static str {
    if n == 1.0 {
        ""
    } else {
        "s"
    }
}

fn trim(n: f64) -> String {
    if n.fract() == 0.0 {
        format!("{n:.0}")
    } else {
        format!("{n}")
    }
}
