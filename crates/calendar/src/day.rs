//! Notes on single dates: holidays, compensatory days, swapped working days and their names.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Why a date's working status differs from the plain weekly pattern (or would, were it a weekday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DayKind {
    /// A public holiday (ngày lễ, Tết) set by the Labour Code.
    Holiday,
    /// A compensatory day off (nghỉ bù) for a holiday that fell on a weekend.
    Compensatory,
    /// An extra day off granted by the yearly schedule, usually swapped for a Saturday worked.
    DayOff,
    /// A Saturday (or other rest day) worked in exchange for a day off (làm bù).
    SwappedWorkday,
    /// A day off decided by a province or an office.
    LocalDayOff,
    /// A working day decided by a province or an office.
    LocalWorkday,
}

impl DayKind {
    /// Whether a date of this kind is a working day.
    pub fn is_working(self) -> bool {
        matches!(self, DayKind::SwappedWorkday | DayKind::LocalWorkday)
    }
}

/// One dated entry of a calendar: a holiday, a day off or a swapped working day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayNote {
    pub date: NaiveDate,
    pub kind: DayKind,
    /// Vietnamese name, e.g. "Tết Nguyên đán".
    pub name_vi: String,
    /// English name, e.g. "Lunar New Year".
    pub name_en: String,
}

impl DayNote {
    pub fn new(date: NaiveDate, kind: DayKind, name_vi: &str, name_en: &str) -> Self {
        DayNote {
            date,
            kind,
            name_vi: name_vi.to_owned(),
            name_en: name_en.to_owned(),
        }
    }

    /// Whether the date is a working day.
    pub fn working(&self) -> bool {
        self.kind.is_working()
    }
}
