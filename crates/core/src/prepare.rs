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
    /// The slots still to prepare, the next last.
    queue: Vec<u32>,
    /// By slot: the dossier before its firing, and what the firing added to its agency's
    /// counts ([`counts`]).
    undo: HashMap<u32, (Dossier, [u64; 5])>,
    /// Dossiers undone since [`Engine::take_withdrawn`] last ran.
    withdrawn: Vec<Arc<str>>,
}

/// What a released preparation kept for undoing (see [`Engine::release`]).
#[derive(Debug)]
pub struct Released {
    _kept: Prepared,
}

/// The agency counts a firing changes: apologies required and overdue, escalations 1–3.
fn counts(s: &AgencyStats) -> [u64; 5] {
    let [e1, e2, e3] = s.escalations;
    [s.apologies_required, s.apologies_overdue, e1, e2, e3]
}

impl Engine {
    /// Fires ahead of time the timers of at most `dossiers` dossiers pending exactly at
    /// `at` (a moment after the engine's clock; others may be pending before it and fire as
    /// usual), appending what they raise to `out`, without moving the clock; returns
    /// whether more are left to prepare (call again). The dossiers are those pending at
    /// `at` on the first call, in slot order, as firing at the moment would take them.
    /// Nothing is prepared while another moment is. Until [`Engine::release`], an event
    /// for a prepared dossier undoes its firing first and reports it by
    /// [`Engine::take_withdrawn`]: what it raised here must then be dropped, and its timer
    /// fires again at its moment like any other.
    pub fn prepare_some(&mut self, at: i64, dossiers: usize, out: &mut Vec<Raised>) -> bool {
        match self.prepared.at {
            Some(p) if p != at => return false,
            Some(_) => {}
            None => {
                self.prepared.at = Some(at);
                self.prepared.queue = self.timers.slots_at(at);
                self.prepared.queue.reverse();
            }
        }
        let mut fired = 0;
        while fired < dossiers {
            let Some(slot) = self.prepared.queue.pop() else {
                return false;
            };
            // Moved by an event since the first call: it fires at its own moment.
            if self.timers.get(slot) != Some(at) {
                continue;
            }
            self.timers.cancel(slot);
            let before = self.dossier(slot).clone();
            let agency = before.agency;
            let was = counts(self.agency_stats(agency));
            self.fire_dossier(slot, at, out);
            let now = counts(self.agency_stats(agency));
            let added = std::array::from_fn(|i| now[i] - was[i]);
            self.prepared.undo.insert(slot, (before, added));
            fired += 1;
        }
        !self.prepared.queue.is_empty()
    }

    /// The earliest moment in `(after, upto]` at which at least `min` dossiers have a timer
    /// pending, with how many (a pass over the timers: for choosing what to prepare).
    pub fn crowded_moment(&self, after: i64, upto: i64, min: usize) -> Option<(i64, usize)> {
        self.timers.crowded(after, upto, min)
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
    /// (what they raised is due out now). Returns the states kept for undoing them, or
    /// `None` before the moment: dropping it frees them (100 000 dossiers take a few ms),
    /// so a service sends what the moment raised first.
    pub fn release(&mut self, now: i64) -> Option<Released> {
        if self.prepared.at.is_none_or(|at| at > now) {
            return None;
        }
        let withdrawn = std::mem::take(&mut self.prepared.withdrawn);
        let done = std::mem::take(&mut self.prepared);
        self.prepared.withdrawn = withdrawn;
        Some(Released { _kept: done })
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
