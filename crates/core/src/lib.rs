//! dunghan core: procedures, the deadline policy and (later) the SLA engine.
//!
//! Pure: time is an argument (Unix seconds); no I/O, no clock, no async.

pub mod allowed;
pub mod deadline;
pub mod error;
pub mod procedure;

pub use allowed::TimeAllowed;
pub use deadline::{due, effective_start, procedure_deadlines, Deadlines, StartNote, StepDeadline};
pub use error::CoreError;
pub use procedure::{Catalog, Procedure, Step, SupplementMode};
