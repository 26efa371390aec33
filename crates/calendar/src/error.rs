//! The one error type of the calendar crate.

use chrono::NaiveDate;

/// Everything that can go wrong building or using a business calendar.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalendarError {
    /// A calendar or schedule file could not be read as TOML of the expected shape.
    #[error("{origin}: {message}")]
    File { origin: String, message: String },
    /// A field held a value of the right type but a wrong meaning.
    #[error("{origin}: field `{field}`: {message}")]
    Invalid {
        origin: String,
        field: String,
        message: String,
    },
    /// An instant or date outside the years the calendar was built for.
    #[error("{what} is outside the calendar's years {first}–{last}")]
    OutOfRange { what: String, first: i32, last: i32 },
    /// A date or year the lunar calendar cannot place.
    #[error("no lunar date for {0}")]
    Lunar(NaiveDate),
    /// An office that no calendar layer defines.
    #[error("unknown office `{0}`")]
    UnknownOffice(String),
    /// An arithmetic request that makes no sense (negative or absurd durations).
    #[error("{0}")]
    Duration(String),
}
