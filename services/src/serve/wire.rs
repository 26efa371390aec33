//! Helpers shared by the gRPC services: request fields to values, values to reply fields,
//! and `INVALID_ARGUMENT` statuses that name the field.

use dunghan_proto::pbjson_types::Timestamp;
use tonic::Status;

/// `INVALID_ARGUMENT` with `field: message`.
pub(crate) fn invalid(field: &str, message: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {message}"))
}

/// A required timestamp field in Unix seconds.
pub(crate) fn instant(field: &str, t: Option<Timestamp>) -> Result<i64, Status> {
    match t {
        Some(t) if (0..1_000_000_000).contains(&t.nanos) => Ok(t.seconds),
        Some(_) => Err(invalid(field, "nanos out of range")),
        None => Err(invalid(field, "is required")),
    }
}

/// A reply timestamp.
pub(crate) fn timestamp(t: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: t,
        nanos: 0,
    })
}
