//! The load generator behind `dunghan loadgen`: a seeded province and its dossiers' events.

pub(crate) mod province;
pub(crate) mod sim;
