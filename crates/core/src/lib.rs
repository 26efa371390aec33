//! dunghan core: procedures, the deadline policy and the SLA engine.
//!
//! Pure: time is an argument (Unix seconds); no I/O, no clock, no async. The engine turns
//! dossier events into raised SLA events deterministically.

pub mod allowed;
pub mod config;
pub mod deadline;
mod dossier;
pub mod engine;
pub mod error;
pub mod event;
mod index;
mod lifecycle;
mod names;
pub mod prepare;
pub mod procedure;
pub mod raised;
pub mod stats;
pub mod timer;

pub use allowed::TimeAllowed;
pub use config::EngineConfig;
pub use deadline::{due, effective_start, procedure_deadlines, Deadlines, StartNote, StepDeadline};
pub use engine::{Engine, OpenDossier, OpenState};
pub use error::CoreError;
pub use event::{Channel, Event, Payload, Satisfaction};
pub use procedure::{Catalog, Procedure, Step, SupplementMode};
pub use raised::{Kind, Outcome, Raised, RejectReason};
pub use stats::{AgencyStats, Stats};
pub use timer::TimerIndex;
