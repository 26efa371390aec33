//! Shared helpers for the criterion benches (random instants, the bench calendar).
