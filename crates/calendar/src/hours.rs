//! Working hours: the sessions of each weekday, in local clock time.

use std::fmt;

use chrono::{NaiveTime, Timelike, Weekday};

/// Seconds in a civil day.
pub const DAY_SECS: u32 = 86_400;

/// One working session of a day, `[start, end)` in seconds after local midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Session {
    pub start: u32,
    pub end: u32,
}

impl Session {
    /// Length in seconds.
    pub fn len(self) -> u32 {
        self.end - self.start
    }

    pub fn is_empty(self) -> bool {
        self.end == self.start
    }

    /// Parses `"07:30-11:30"`.
    pub fn parse(text: &str) -> Result<Session, String> {
        let (a, b) = text
            .split_once('-')
            .ok_or_else(|| format!("`{text}` is not a session like \"07:30-11:30\""))?;
        let start = parse_clock(a.trim())?;
        let end = if b.trim() == "24:00" {
            DAY_SECS
        } else {
            parse_clock(b.trim())?
        };
        if end <= start {
            return Err(format!("session `{text}` ends before it starts"));
        }
        Ok(Session { start, end })
    }
}

impl fmt::Display for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", clock(self.start), clock(self.end))
    }
}

/// Parses `"15:00"` (or `"15:00:30"`) into seconds after midnight.
pub fn parse_clock(text: &str) -> Result<u32, String> {
    NaiveTime::parse_from_str(text, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M:%S"))
        .map(|t| t.num_seconds_from_midnight())
        .map_err(|_| format!("`{text}` is not a clock time like \"07:30\""))
}

/// Formats seconds after midnight as `HH:MM` (or `HH:MM:SS` when seconds are set).
pub fn clock(secs: u32) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if s == 0 {
        format!("{h:02}:{m:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// The sessions of every weekday, plus the sessions of a rest day worked by exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeekHours {
    /// Monday first.
    days: [Vec<Session>; 7],
    /// Sessions of a swapped working day (a Saturday worked instead of a weekday).
    swapped: Vec<Session>,
}

impl Default for WeekHours {
    /// Monday–Friday 07:30–11:30 and 13:00–17:00 (domain.md §8), Saturday and Sunday off.
    fn default() -> Self {
        let day = vec![
            Session {
                start: 7 * 3600 + 1800,
                end: 11 * 3600 + 1800,
            },
            Session {
                start: 13 * 3600,
                end: 17 * 3600,
            },
        ];
        WeekHours::new(
            [
                day.clone(),
                day.clone(),
                day.clone(),
                day.clone(),
                day.clone(),
                vec![],
                vec![],
            ],
            None,
        )
        .expect("default hours are valid")
    }
}

impl WeekHours {
    /// Builds hours from each weekday's sessions (Monday first). `swapped` defaults to the
    /// sessions of the first weekday that has any.
    pub fn new(days: [Vec<Session>; 7], swapped: Option<Vec<Session>>) -> Result<Self, String> {
        for (i, sessions) in days.iter().enumerate() {
            check_sessions(sessions).map_err(|e| format!("{}: {e}", weekday_name(i)))?;
        }
        let swapped = match swapped {
            Some(s) => {
                check_sessions(&s).map_err(|e| format!("swapped working day: {e}"))?;
                s
            }
            None => days
                .iter()
                .find(|d| !d.is_empty())
                .cloned()
                .unwrap_or_default(),
        };
        Ok(WeekHours { days, swapped })
    }

    /// Sessions of a weekday.
    pub fn on(&self, weekday: Weekday) -> &[Session] {
        &self.days[weekday.num_days_from_monday() as usize]
    }

    /// Sessions of a day that is normally a rest day but is worked by exchange.
    pub fn swapped(&self) -> &[Session] {
        &self.swapped
    }

    /// The standard length of one working day, used to turn "N working days" into working time:
    /// the longest day of the week.
    pub fn day_length(&self) -> u32 {
        self.days
            .iter()
            .map(|d| d.iter().map(|s| s.len()).sum::<u32>())
            .max()
            .unwrap_or(0)
    }

    /// Replaces one weekday's sessions.
    pub fn set(&mut self, weekday: Weekday, sessions: Vec<Session>) -> Result<(), String> {
        check_sessions(&sessions).map_err(|e| format!("{weekday}: {e}"))?;
        self.days[weekday.num_days_from_monday() as usize] = sessions;
        Ok(())
    }

    /// Replaces the sessions of swapped working days.
    pub fn set_swapped(&mut self, sessions: Vec<Session>) -> Result<(), String> {
        check_sessions(&sessions).map_err(|e| format!("swapped: {e}"))?;
        self.swapped = sessions;
        Ok(())
    }
}

fn check_sessions(sessions: &[Session]) -> Result<(), String> {
    for pair in sessions.windows(2) {
        if pair[1].start < pair[0].end {
            return Err(format!(
                "sessions {} and {} overlap or are out of order",
                pair[0], pair[1]
            ));
        }
    }
    if sessions.iter().any(|s| s.end > DAY_SECS || s.is_empty()) {
        return Err("a session must be non-empty and end by 24:00".into());
    }
    Ok(())
}

fn weekday_name(i: usize) -> &'static str {
    [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ][i]
}

/// Vietnamese name of a weekday, as printed on an appointment slip.
pub fn weekday_vi(weekday: Weekday) -> &'static str {
    match weekday {
        Weekday::Mon => "Thứ Hai",
        Weekday::Tue => "Thứ Ba",
        Weekday::Wed => "Thứ Tư",
        Weekday::Thu => "Thứ Năm",
        Weekday::Fri => "Thứ Sáu",
        Weekday::Sat => "Thứ Bảy",
        Weekday::Sun => "Chủ Nhật",
    }
}

/// English name of a weekday.
pub fn weekday_en(weekday: Weekday) -> &'static str {
    match weekday {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_day_is_eight_hours() {
        assert_eq!(WeekHours::default().day_length(), 8 * 3600);
        assert!(WeekHours::default().on(Weekday::Sat).is_empty());
    }

    #[test]
    fn parses_and_rejects_sessions() {
        assert_eq!(
            Session::parse("07:00-11:30").unwrap(),
            Session {
                start: 7 * 3600,
                end: 11 * 3600 + 1800
            }
        );
        assert!(Session::parse("11:30-07:00")
            .unwrap_err()
            .contains("ends before"));
        assert!(Session::parse("7h-11h").is_err());
        let a = Session::parse("07:00-12:00").unwrap();
        let b = Session::parse("11:00-17:00").unwrap();
        assert!(WeekHours::new(
            [vec![a, b], vec![], vec![], vec![], vec![], vec![], vec![]],
            None
        )
        .unwrap_err()
        .contains("overlap"));
    }
}
