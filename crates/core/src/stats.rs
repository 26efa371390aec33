//! Running counts per agency: what the replay summary and the rates are made of.

use std::collections::BTreeMap;

use crate::event::Satisfaction;
use crate::raised::{Outcome, RejectReason};

/// Counts for one agency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgencyStats {
    pub received: u64,
    pub early: u64,
    pub on_time: u64,
    pub late: u64,
    pub withdrawn: u64,
    pub refused: u64,
    pub stopped: u64,
    pub apologies_required: u64,
    pub apologies_issued: u64,
    pub apologies_overdue: u64,
    /// Escalations by level 1–3.
    pub escalations: [u64; 3],
    /// Ratings by level, in [`Satisfaction::ALL`] order.
    pub ratings: [u64; 4],
}

impl AgencyStats {
    pub fn finished(&self) -> u64 {
        self.early + self.on_time + self.late
    }

    /// (early + on time) / finished, if any finished (domain.md §7).
    pub fn on_time_rate(&self) -> Option<f64> {
        let finished = self.finished();
        (finished > 0).then(|| (self.early + self.on_time) as f64 / finished as f64)
    }

    /// Satisfied-or-better ratings / all ratings.
    pub fn satisfaction_rate(&self) -> Option<f64> {
        let all: u64 = self.ratings.iter().sum();
        (all > 0).then(|| (self.ratings[0] + self.ratings[1]) as f64 / all as f64)
    }

    pub(crate) fn count_outcome(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Early => self.early += 1,
            Outcome::OnTime => self.on_time += 1,
            Outcome::Late => self.late += 1,
        }
    }

    pub(crate) fn count_rating(&mut self, level: Satisfaction) {
        let i = Satisfaction::ALL
            .iter()
            .position(|l| *l == level)
            .unwrap_or(0);
        self.ratings[i] += 1;
    }
}

/// Counts for all agencies, plus rejected input by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub agencies: BTreeMap<String, AgencyStats>,
    pub rejected: BTreeMap<RejectReason, u64>,
    pub duplicates: u64,
    pub events_applied: u64,
}
