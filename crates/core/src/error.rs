//! The one error type of the core crate.

use chrono::NaiveDate;
use dunghan_calendar::CalendarError;

/// Everything that can go wrong loading procedures or computing deadlines.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoreError {
    /// The catalog file is not TOML of the expected shape.
    #[error("{origin}: {message}")]
    CatalogFile { origin: String, message: String },
    /// A procedure in the catalog has a field with a wrong meaning.
    #[error("{origin}: procedure {code} (effective {effective_from}): field `{field}`: {message}")]
    Procedure {
        origin: String,
        code: String,
        effective_from: String,
        field: String,
        message: String,
    },
    /// No procedure with this code in the catalog.
    #[error("unknown procedure `{0}`")]
    UnknownProcedure(String),
    /// The procedure exists, but no version was in force on that date.
    #[error("procedure `{code}` has no version in force on {date} (earliest: {earliest})")]
    NotInForce {
        code: String,
        date: NaiveDate,
        earliest: NaiveDate,
    },
    /// A duration that makes no sense (negative, zero where time is needed, absurd).
    #[error("{0}")]
    Duration(String),
    #[error(transparent)]
    Calendar(#[from] CalendarError),
}
