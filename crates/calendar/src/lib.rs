//! dunghan business calendars: Vietnamese holidays, yearly schedules, working hours and
//! working-time arithmetic.
//!
//! Pure: no file I/O (callers hand in text), no clock (instants are arguments).
//! Layers nest national → province → office ([`CalendarSet`]); each flattens into a
//! [`Calendar`] whose per-day prefix sums and inverse table make every operation cost the
//! same whatever the span.

pub mod builder;
pub mod calendar;
pub mod day;
pub mod error;
pub mod explain;
pub mod holidays;
pub mod hours;
pub mod lunar;
pub mod reference;
pub mod schedule;
pub mod spec;
mod zone;

pub use builder::CalendarBuilder;
pub use calendar::{from_ts, Anchor, Calendar, Closure};
pub use day::{DayKind, DayNote};
pub use error::CalendarError;
pub use explain::{SkipReason, Skipped, SpecialDay};
pub use hours::{Session, WeekHours};
pub use spec::{CalendarFile, CalendarSet};
