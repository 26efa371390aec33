//! Engine rule settings (domain.md §6 defaults, each configurable).

use serde::Deserialize;

/// When warnings, escalations and apologies fire.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Share of a step's or the dossier's allotted working time after which a warning fires.
    pub warning_fraction: f64,
    /// Working days before the dossier's deadline at which, with no result ready, the
    /// apology is required and the "due within a working day" warning fires.
    pub apology_lead_days: f64,
    /// Working days after a step's deadline at which it escalates to level 2.
    pub escalation_level2_delay_days: f64,
    /// Events more than this many seconds ahead of the engine's clock are rejected.
    pub max_future_secs: i64,
    /// How long (event time, seconds) an ended dossier is remembered, to recognise
    /// duplicates and late events for it.
    pub retain_ended_secs: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            warning_fraction: 0.75,
            apology_lead_days: 1.0,
            escalation_level2_delay_days: 1.0,
            max_future_secs: 86_400,
            retain_ended_secs: 90 * 86_400,
        }
    }
}

impl EngineConfig {
    /// Checks cross-field sense; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.warning_fraction > 0.0 && self.warning_fraction < 1.0) {
            return Err(format!(
                "warning_fraction {} must be between 0 and 1",
                self.warning_fraction
            ));
        }
        for (name, v) in [
            ("apology_lead_days", self.apology_lead_days),
            (
                "escalation_level2_delay_days",
                self.escalation_level2_delay_days,
            ),
        ] {
            if !(v.is_finite() && (0.0..=30.0).contains(&v)) {
                return Err(format!("{name} {v} must be between 0 and 30 working days"));
            }
        }
        if self.max_future_secs < 0 || self.retain_ended_secs < 0 {
            return Err("max_future_secs and retain_ended_secs must not be negative".into());
        }
        Ok(())
    }
}
