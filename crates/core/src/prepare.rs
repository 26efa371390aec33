//! Firing an announced moment ahead of time (the 17:00 burst): the timers due exactly at
//! that moment fire early, each dossier keeping its state from before, so a service can
//! convert and hold what they raise and only send it when the moment comes. An event for a
//! prepared dossier before the moment first undoes its firing (state, agency counts,
//! timer), so every dossier's output is what firing at the moment would have given.
//!
//! Until the moment, what the engine shows of a prepared dossier (lists, gauges) is its
//! state at the moment; its raised events exist only in the service's hands.

use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use crate::dossier::Dossier;
use crate::engine::Engine;
use crate::raised::Raised;
use crate::stats::AgencyStats;

/// The moment being prepared and how to undo each dossier fired for it.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    at: Option<i64>,
    /// By slot: the dossier before its firing, and what the firing added to its agency's
    /// counts ([`counts`]).
    undo: HashMap<u32, (Dossier, [u64; 5])>,
    /// Dossiers undone since [`Engine::take_withdrawn`] last ran.
    withdrawn: Vec<Arc<str>>,
}

/// The agency counts a firing changes: apologies required and overdue, escalations 1–3.
fn counts(s: &AgencyStats) -> [u64; 5] {
    let [e1, e2, e3] = s.escalations;
    [s.apologies_required, s.apologies_overdue, e1, e2, e3]
}

impl Engine {
    /// Fires ahead of time the timers of at most `dossiers` dossiers due exactly at `at`
    /// (the earliest pending moment), appending what they raise to `out`, without moving
    /// the engine's clock; returns whether more dossiers are due exactly at `at` (call
    /// again). Nothing is prepared while another moment is. Until [`Engine::release`],
    /// an event for a prepared dossier undoes its firing first and reports it by
    /// [`Engine::take_withdrawn`]: what it raised here must then be dropped, and its timer
    /// fires again at its moment like any other.
    pub fn prepare_some(&mut self, at: i64, dossiers: usize, out: &mut Vec<Raised>) -> bool {
        if self.prepared.at.is_some_and(|p| p != at) {
            return false;
        }
        for _ in 0..dossiers {
            let Some((_, slot)) = self.timers.peek().filter(|(t, _)| *t == at) else {
                return false;
            };
            self.prepared.at = Some(at);
            self.timers.cancel(slot);
            let before = self.dossier(slot).clone();
            let agency = before.agency;
            let was = counts(self.agency_stats(agency));
            self.fire_dossier(slot, at, out);
            let now = counts(self.agency_stats(agency));
            let added = std::array::from_fn(|i| now[i] - was[i]);
            self.prepared.undo.insert(slot, (before, added));
        }
        self.timers.peek().is_some_and(|(t, _)| t == at)
    }

    /// The moment being prepared, if any.
    pub fn prepared_at(&self) -> Option<i64> {
        self.prepared.at
    }

    /// Dossiers prepared and not withdrawn.
    pub fn prepared_dossiers(&self) -> usize {
        self.prepared.undo.len()
    }

    /// Ends the preparation once `now` has reached its moment: the prepared firings stand
    /// (what they raised is due out now). Returns whether it ended.
    pub fn release(&mut self, now: i64) -> bool {
        if self.prepared.at.is_none_or(|at| at > now) {
            return false;
        }
        self.prepared.at = None;
        self.prepared.undo = HashMap::default();
        true
    }

    /// The dossiers whose prepared firing was undone since the last call.
    pub fn take_withdrawn(&mut self) -> Vec<Arc<str>> {
        std::mem::take(&mut self.prepared.withdrawn)
    }

    /// Undoes the prepared firing of `slot`, if it has one: its state and agency counts
    /// from before, its timer back at the moment.
    pub(crate) fn withdraw(&mut self, slot: u32) {
        let Some((before, added)) = self.prepared.undo.remove(&slot) else {
            return;
        };
        let (agency, id) = (before.agency, before.id.clone());
        self.slots[slot as usize] = Some(before);
        let s = self.agency_stats(agency);
        let [r, o, e1, e2, e3] = added;
        s.apologies_required -= r;
        s.apologies_overdue -= o;
        for (count, n) in s.escalations.iter_mut().zip([e1, e2, e3]) {
            *count -= n;
        }
        self.rearm(slot);
        self.prepared.withdrawn.push(id);
    }

    /// Undoes every prepared firing (the calendars change under them).
    pub(crate) fn withdraw_all(&mut self) {
        let slots: Vec<u32> = self.prepared.undo.keys().copied().collect();
        for slot in slots {
            self.withdraw(slot);
        }
    }

    /// Before a dossier changes outside a firing: undoes its prepared firing, if any.
    pub(crate) fn touch(&mut self, slot: Option<u32>) {
        if let Some(slot) = slot.filter(|_| !self.prepared.undo.is_empty()) {
            self.withdraw(slot);
        }
    }
}
