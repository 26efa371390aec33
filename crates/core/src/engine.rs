//! The SLA engine: applies dossier events and advances time, raising SLA events.
//!
//! Deterministic and pure: the same events in the same order give the same raised events,
//! whatever the wall clock. A dossier's timers fire when its own next event arrives (before
//! that event is applied) or when the engine's clock is advanced past them, so each
//! dossier's output does not depend on how other dossiers' events are interleaved.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;

use chrono::NaiveDate;
use dunghan_calendar::{Calendar, CalendarSet};
use rustc_hash::FxHashMap as HashMap;

use crate::config::EngineConfig;
use crate::dossier::{fired, rule_kind, step_fired, Dossier, Rule, NEVER, NONE, T32};
use crate::event::{Event, Payload};
use crate::index::DossierIndex;
use crate::names::Names;
use crate::procedure::{Catalog, Procedure};
use crate::raised::{raised_id, Kind, Raised, RejectReason};
use crate::stats::{AgencyStats, Stats};
use crate::timer::TimerIndex;
use crate::CoreError;

/// An ended dossier, remembered for a while to recognise duplicates and late events.
#[derive(Debug, Clone)]
pub(crate) struct Ended {
    pub(crate) agency: u32,
    pub(crate) seen: Box<[u64]>,
}

/// Where an open dossier stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpenState {
    /// Before the due-soon moment.
    InTime,
    /// Within a working day (the apology lead) of its deadline.
    DueSoon,
    /// Past its deadline with no result.
    Overdue,
    /// The clock is stopped (supplement, fees).
    Paused,
    /// The result is ready, not yet returned.
    ResultReady,
}

/// One open dossier, as lists show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenDossier {
    pub dossier_id: Arc<str>,
    pub agency_id: Arc<str>,
    /// The department holding it (latest step in progress), or empty.
    pub department_id: Arc<str>,
    /// The appointment deadline.
    pub deadline: i64,
    pub state: OpenState,
}

/// Where dossier `d` stands at `now`.
fn open_state(d: &Dossier, now: i64) -> OpenState {
    if !d.ready_at.is_never() {
        OpenState::ResultReady
    } else if d.paused != 0 {
        OpenState::Paused
    } else if now >= d.due.get() {
        OpenState::Overdue
    } else if now >= d.soon_at.get() {
        OpenState::DueSoon
    } else {
        OpenState::InTime
    }
}

/// A rejection before any state changed: reason and message.
pub(crate) type Refusal = (RejectReason, String);

/// The engine of one partition (or of the embedded node).
#[derive(Debug)]
pub struct Engine {
    pub(crate) cfg: EngineConfig,
    catalog: Catalog,
    calendar_set: CalendarSet,
    pub(crate) calendars: Vec<Arc<Calendar>>,
    calendar_by_office: HashMap<String, u16>,
    pub(crate) procedures: Vec<Procedure>,
    /// Code and field of each procedure version, shared by the events raised about it.
    procedure_labels: Vec<(Arc<str>, Arc<str>)>,
    /// The time allowed of each procedure version in words, for `DEADLINE_COMPUTED`.
    pub(crate) procedure_allowed: Vec<String>,
    procedure_index: HashMap<(String, NaiveDate), u32>,
    pub(crate) names: Names,
    pub(crate) slots: Vec<Option<Dossier>>,
    free: Vec<u32>,
    by_id: DossierIndex,
    /// By dossier id, as publishers write it: keyed hashing (hashbrown's default).
    ended: hashbrown::HashMap<Arc<str>, Ended>,
    ended_order: VecDeque<(i64, Arc<str>)>,
    /// Forgotten ended dossiers not yet taken, when tracked.
    forgotten: Option<Vec<Arc<str>>>,
    pub(crate) timers: TimerIndex,
    /// A moment fired ahead of time, with how to undo it ([`Engine::prepare_some`]).
    pub(crate) prepared: crate::prepare::Prepared,
    /// The engine's clock: the latest of the event times seen and the times advanced to.
    clock: i64,
    /// The present (wall clock, or a replay's `--now`): events more than
    /// `max_future_secs` after it are refused. Event times alone never move it, so a gap
    /// of days between two events in a replay is not "the future".
    present: i64,
    pub(crate) stats: Stats,
    /// Per-agency counts by interned agency id (names are resolved in [`Engine::stats`]).
    by_agency: HashMap<u32, AgencyStats>,
}

impl Engine {
    /// An engine over a catalog and the province's calendars.
    pub fn new(catalog: Catalog, calendars: CalendarSet, cfg: EngineConfig) -> Engine {
        Engine {
            cfg,
            catalog,
            calendars: vec![calendars.province().clone()],
            calendar_by_office: HashMap::default(),
            calendar_set: calendars,
            procedures: Vec::new(),
            procedure_labels: Vec::new(),
            procedure_allowed: Vec::new(),
            procedure_index: HashMap::default(),
            names: Names::default(),
            slots: Vec::new(),
            free: Vec::new(),
            by_id: DossierIndex::default(),
            ended: hashbrown::HashMap::default(),
            ended_order: VecDeque::new(),
            forgotten: None,
            timers: TimerIndex::new(),
            prepared: Default::default(),
            clock: NEVER,
            present: NEVER,
            stats: Stats::default(),
            by_agency: HashMap::default(),
        }
    }

    /// Makes room for `dossiers` more open dossiers, so a service that knows its size (after
    /// a restore, say) does not grow its tables while events arrive.
    pub fn reserve(&mut self, dossiers: usize) {
        self.slots.reserve(dossiers);
        self.by_id.reserve(dossiers, &self.slots);
        self.timers.reserve(dossiers);
    }

    /// How many open dossiers are in each state at `now`, indexed by `OpenState as usize`
    /// (a pass over the slots without building the list: for gauges).
    pub fn count_open_by_state(&self, now: i64) -> [usize; 5] {
        let mut counts = [0; 5];
        for d in self.slots.iter().flatten() {
            counts[open_state(d, now) as usize] += 1;
        }
        counts
    }

    /// Every open dossier and where it stands at `now` (in slot order: callers sort).
    pub fn open_dossiers_at(&self, now: i64) -> impl Iterator<Item = OpenDossier> + '_ {
        self.slots.iter().flatten().map(move |d| {
            let state = open_state(d, now);
            let holder = d.steps.last().map_or(NONE, |s| s.department);
            OpenDossier {
                dossier_id: d.id.clone(),
                agency_id: self.names.shared(d.agency),
                department_id: self.names.shared(holder),
                deadline: d.due.get(),
                state,
            }
        })
    }

    /// Switches to new calendars (a closure, a new yearly schedule) at the moment `at`.
    /// Each open dossier's pending moments keep the working time they had left at `at`,
    /// counted again on its office's new calendar; a dossier whose deadline moves raises
    /// `DEADLINE_SHIFTED` (id suffix `cause`). Dossiers with a result are left alone.
    pub fn replace_calendars(
        &mut self,
        calendars: CalendarSet,
        at: i64,
        cause: &str,
        out: &mut Vec<Raised>,
    ) {
        self.withdraw_all();
        let old = std::mem::take(&mut self.calendars);
        self.calendars = vec![calendars.province().clone()];
        self.calendar_set = calendars;
        self.calendar_by_office.clear();
        for slot in 0..self.slots.len() as u32 {
            let Some(d) = self.slots[slot as usize].as_ref() else {
                continue;
            };
            let office = self.names.get(d.office).to_owned();
            let previous = old[d.calendar as usize].clone();
            let index = self.calendar_for(&office);
            let new = self.calendars[index as usize].clone();
            let d = self.slots[slot as usize].as_mut().expect("checked above");
            d.calendar = index;
            if !d.ready_at.is_never() {
                continue;
            }
            let before = d.due;
            let remap = |t: &mut T32| {
                let x = t.get();
                if x == NEVER || x <= at {
                    return;
                }
                let left = previous.working_secs_between(at, x).unwrap_or(0);
                if left > 0 {
                    if let Ok(moved) = new.add_working_secs(at, left) {
                        *t = T32::of(moved);
                    }
                }
            };
            remap(&mut d.due);
            remap(&mut d.statutory);
            remap(&mut d.warn_at);
            remap(&mut d.soon_at);
            for s in d.steps.iter_mut() {
                remap(&mut s.due);
                remap(&mut s.warn_at);
                remap(&mut s.level2_at);
            }
            let moved = d.due != before;
            self.rearm(slot);
            if moved {
                let mut raised = self.raise(slot, Kind::DeadlineShifted, "", NONE, 0, at);
                raised.id = format!("{}:{cause}", raised.id);
                raised.reason = Cow::Owned(format!("calendar change {cause}"));
                out.push(raised);
            }
        }
    }

    /// Duplicate events ignored so far (cheap, unlike [`Engine::stats`]).
    pub fn duplicates(&self) -> u64 {
        self.stats.duplicates
    }

    /// Counts so far (a snapshot).
    pub fn stats(&self) -> Stats {
        let mut stats = self.stats.clone();
        for (agency, counts) in &self.by_agency {
            stats
                .agencies
                .insert(self.names.get(*agency).to_owned(), counts.clone());
        }
        stats
    }

    /// The counts of one agency (interned id).
    pub(crate) fn agency_stats(&mut self, agency: u32) -> &mut AgencyStats {
        self.by_agency.entry(agency).or_default()
    }

    /// Open dossiers (received, not yet returned, withdrawn, refused or stopped).
    pub fn open_dossiers(&self) -> usize {
        self.by_id.len()
    }

    /// Dossiers with a pending timer.
    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    /// The earliest pending timer.
    pub fn next_timer(&self) -> Option<i64> {
        self.timers.peek().map(|(t, _)| t)
    }

    /// The engine's clock (`None` before the first event or advance).
    pub fn clock(&self) -> Option<i64> {
        (self.clock != NEVER).then_some(self.clock)
    }

    /// Approximate bytes held for open dossiers (state, index entries, timers).
    pub fn state_bytes(&self) -> usize {
        let dossiers: usize = self.slots.iter().flatten().map(Dossier::bytes).sum();
        let index = self.by_id.bytes()
            + self.slots.capacity() * std::mem::size_of::<Option<Dossier>>()
            - self.slots.iter().flatten().count() * std::mem::size_of::<Dossier>();
        dossiers + index + self.timers.bytes()
    }

    /// Applies one event, appending what it raises to `out` (timers of this dossier that
    /// were due before the event fire first).
    pub fn apply(&mut self, event: &Event, out: &mut Vec<Raised>) {
        let t = event.occurred_at;
        if !T32::fits(t) {
            let msg = format!("occurred_at {} is outside 1970–2106", fmt(t));
            self.reject(event, RejectReason::OutOfCalendar, msg, out);
            return;
        }
        if self.present != NEVER && t > self.present.saturating_add(self.cfg.max_future_secs) {
            let msg = format!(
                "occurred_at {} is more than {} s after the present ({})",
                fmt(t),
                self.cfg.max_future_secs,
                fmt(self.present)
            );
            self.reject(event, RejectReason::FutureTimestamp, msg, out);
            return;
        }
        let hash = hash_id(&event.event_id);
        let slot = self.by_id.get(&event.dossier_id, &self.slots);
        self.touch(slot);
        let result = match (slot, &event.payload) {
            (Some(slot), _) if self.dossier(slot).seen.contains(&hash) => {
                self.stats.duplicates += 1;
                return;
            }
            (Some(slot), Payload::Received { .. }) => Err((
                RejectReason::AlreadyReceived,
                format!("dossier `{}` was already received", self.dossier(slot).id),
            )),
            (Some(slot), _) => {
                // Rules due strictly before the event fire first; at the same second the
                // event wins (a result at the deadline is on time, not overdue). If the
                // event is then refused, the firing is undone: a refused event (a wrong
                // time, an unknown step) must not move its dossier's clock, or a rule a
                // later valid event would have stopped fires (found by the fuzz test).
                let due = self.dossier(slot).next_rule().is_some_and(|(at, _)| at < t);
                let undo = due.then(|| {
                    let agency = self.dossier(slot).agency;
                    let stats = self.agency_stats(agency).clone();
                    (self.dossier(slot).clone(), agency, stats, out.len())
                });
                self.fire_dossier(slot, t.saturating_sub(1), out);
                let result = self.apply_to(slot, event, hash, out);
                if let (Err(_), Some((dossier, agency, stats, len))) = (&result, undo) {
                    self.slots[slot as usize] = Some(dossier);
                    *self.agency_stats(agency) = stats;
                    out.truncate(len);
                    self.rearm(slot);
                }
                result
            }
            (None, payload) => match self.ended.get(event.dossier_id.as_str()) {
                Some(e) if e.seen.contains(&hash) => {
                    self.stats.duplicates += 1;
                    return;
                }
                Some(e) => match payload {
                    Payload::CitizenRated { level, .. } => {
                        let (agency, level) = (e.agency, *level);
                        self.agency_stats(agency).count_rating(level);
                        Ok(())
                    }
                    _ => Err((
                        RejectReason::AfterEnd,
                        format!(
                            "{} for dossier `{}` arrived after the dossier ended",
                            payload.name(),
                            event.dossier_id
                        ),
                    )),
                },
                None => match payload {
                    Payload::Received { .. } => self.receive(event, hash, out),
                    _ => Err((
                        RejectReason::UnknownDossier,
                        format!(
                            "{} for unknown dossier `{}` (no received event)",
                            payload.name(),
                            event.dossier_id
                        ),
                    )),
                },
            },
        };
        match result {
            Ok(()) => {
                self.stats.events_applied += 1;
                self.clock = self.clock.max(t);
            }
            Err((reason, msg)) => {
                // Remember the refused event too, so a redelivered copy is a duplicate, not
                // a second rejection (dossiers unknown to the engine have nowhere to keep it).
                self.remember(&event.dossier_id, hash);
                self.reject(event, reason, msg, out)
            }
        }
    }

    /// Records an event id as seen by a known dossier, open or ended.
    fn remember(&mut self, dossier_id: &str, hash: u64) {
        if let Some(slot) = self.by_id.get(dossier_id, &self.slots) {
            self.dossier_mut(slot).see(hash);
        } else if let Some(e) = self.ended.get_mut(dossier_id) {
            if !e.seen.contains(&hash) {
                let mut seen = e.seen.to_vec();
                seen.push(hash);
                e.seen = seen.into_boxed_slice();
            }
        }
    }

    /// Sets the present moment (a replay's `--now`) against which future timestamps are judged.
    pub fn set_present(&mut self, now: i64) {
        self.present = self.present.max(now);
    }

    /// The present future timestamps are judged against.
    pub fn present(&self) -> i64 {
        self.present
    }

    /// Sets the present exactly, even backwards: a runtime restoring a dossier re-applies
    /// each of its events against the present it was first judged against.
    pub fn restore_present(&mut self, now: i64) {
        self.present = now;
    }

    /// Advances the clock to `now` (live: the wall clock, which also becomes the present),
    /// firing every rule whose moment is at or before it.
    pub fn advance_to(&mut self, now: i64, out: &mut Vec<Raised>) {
        while self.advance_some(now, usize::MAX, out) {}
    }

    /// Like [`Engine::advance_to`], but fires the timers of at most `dossiers` dossiers;
    /// returns whether more are due at `now` (call again). A service firing a burst in
    /// slices can store and publish the first raised events while the rest wait, and a
    /// dossier's output does not depend on how the burst is sliced.
    pub fn advance_some(&mut self, now: i64, dossiers: usize, out: &mut Vec<Raised>) -> bool {
        self.present = self.present.max(now);
        for _ in 0..dossiers {
            let Some((_, slot)) = self.timers.pop_due(now) else {
                break;
            };
            self.fire_dossier(slot, now, out);
        }
        if self.timers.peek().is_some_and(|(t, _)| t <= now) {
            return true;
        }
        self.clock = self.clock.max(now);
        let horizon = self.clock.saturating_sub(self.cfg.retain_ended_secs);
        while let Some((at, _)) = self.ended_order.front() {
            if *at >= horizon {
                break;
            }
            let (_, id) = self.ended_order.pop_front().expect("front exists");
            self.ended.remove(&id);
            if let Some(forgotten) = &mut self.forgotten {
                forgotten.push(id);
            }
        }
        false
    }

    /// Fires the rules of one dossier due at or before `upto` (nothing if it is not open),
    /// without moving the engine's clock. A runtime that restores a dossier from its own
    /// event history uses it to reproduce the stream-time advances the dossier saw live.
    pub fn advance_dossier(&mut self, dossier_id: &str, upto: i64, out: &mut Vec<Raised>) {
        if let Some(slot) = self.by_id.get(dossier_id, &self.slots) {
            self.touch(Some(slot));
            self.fire_dossier(slot, upto, out);
        }
    }

    /// Whether the engine holds a dossier: open, or ended and still remembered.
    pub fn knows(&self, dossier_id: &str) -> bool {
        self.by_id.get(dossier_id, &self.slots).is_some() || self.ended.contains_key(dossier_id)
    }

    /// Starts recording the ids of ended dossiers the engine forgets (after
    /// `retain_ended_secs`), for [`Engine::take_forgotten`]; off by default.
    pub fn track_forgotten(&mut self) {
        self.forgotten = Some(Vec::new());
    }

    /// The dossiers forgotten since the last call (empty unless tracking is on).
    pub fn take_forgotten(&mut self) -> Vec<Arc<str>> {
        self.forgotten
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Records input that could not be decoded into an event (bad JSON or protobuf, missing
    /// fields) and returns its REJECTED event, stamped with the engine's clock.
    pub fn reject_malformed(
        &mut self,
        dossier_id: &str,
        event_id: &str,
        message: String,
    ) -> Raised {
        *self
            .stats
            .rejected
            .entry(RejectReason::Malformed)
            .or_default() += 1;
        let at = if self.clock == NEVER { 0 } else { self.clock };
        Raised::rejected(dossier_id, event_id, at, RejectReason::Malformed, message)
    }

    fn reject(&mut self, event: &Event, reason: RejectReason, msg: String, out: &mut Vec<Raised>) {
        *self.stats.rejected.entry(reason).or_default() += 1;
        out.push(Raised::rejected(
            &event.dossier_id,
            &event.event_id,
            event.occurred_at,
            reason,
            msg,
        ));
    }

    pub(crate) fn dossier(&self, slot: u32) -> &Dossier {
        self.slots[slot as usize].as_ref().expect("slot in use")
    }

    pub(crate) fn dossier_mut(&mut self, slot: u32) -> &mut Dossier {
        self.slots[slot as usize].as_mut().expect("slot in use")
    }

    pub(crate) fn calendar_of(&self, slot: u32) -> Arc<Calendar> {
        self.calendars[self.dossier(slot).calendar as usize].clone()
    }

    /// The calendar index for an office (its own layer, else the province's).
    pub(crate) fn calendar_for(&mut self, office: &str) -> u16 {
        if let Some(&i) = self.calendar_by_office.get(office) {
            return i;
        }
        let cal = self.calendar_set.for_office(Some(office)).clone();
        let i = match self.calendars.iter().position(|c| Arc::ptr_eq(c, &cal)) {
            Some(i) => i as u16,
            None => {
                self.calendars.push(cal);
                (self.calendars.len() - 1) as u16
            }
        };
        self.calendar_by_office.insert(office.to_owned(), i);
        i
    }

    /// The procedure version in force for a receipt date, interned.
    pub(crate) fn procedure_for(&mut self, code: &str, date: NaiveDate) -> Result<u32, CoreError> {
        let p = self.catalog.lookup(code, date)?;
        let key = (p.code.clone(), p.effective_from);
        if let Some(&i) = self.procedure_index.get(&key) {
            return Ok(i);
        }
        self.procedure_labels
            .push((Arc::from(p.code.as_str()), Arc::from(p.field.as_str())));
        self.procedure_allowed.push(if p.reduced.is_some() {
            format!("{} (statutory {})", p.appointment(), p.statutory)
        } else {
            p.statutory.to_string()
        });
        self.procedures.push(p.clone());
        let i = (self.procedures.len() - 1) as u32;
        self.procedure_index.insert(key, i);
        Ok(i)
    }

    /// Stores a new open dossier and arms its timer.
    pub(crate) fn insert(&mut self, dossier: Dossier) -> u32 {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(dossier);
                slot
            }
            None => {
                self.slots.push(Some(dossier));
                (self.slots.len() - 1) as u32
            }
        };
        self.by_id.insert(slot, &self.slots);
        self.rearm(slot);
        slot
    }

    /// Ends a dossier: forgets its state, remembers its id for duplicates and late events.
    pub(crate) fn end(&mut self, slot: u32, at: i64) {
        let id = self.dossier(slot).id.clone();
        self.by_id.remove(&id, &self.slots);
        let d = self.slots[slot as usize].take().expect("slot in use");
        self.timers.cancel(slot);
        self.free.push(slot);
        self.ended_order.push_back((at, d.id.clone()));
        self.ended.insert(
            d.id,
            Ended {
                agency: d.agency,
                seen: d.seen.into_boxed_slice(),
            },
        );
    }

    /// Re-arms the timer of a dossier from its state.
    pub(crate) fn rearm(&mut self, slot: u32) {
        let next = self.dossier(slot).next_wakeup();
        self.timers.set(slot, next);
    }

    /// Fires this dossier's rules whose moment is at or before `upto`, in time order.
    pub(crate) fn fire_dossier(&mut self, slot: u32, upto: i64, out: &mut Vec<Raised>) {
        while let Some((at, rule)) = self.dossier(slot).next_rule() {
            if at > upto {
                break;
            }
            self.fire(slot, at, rule, out);
        }
        self.rearm(slot);
    }

    fn fire(&mut self, slot: u32, at: i64, rule: Rule, out: &mut Vec<Raised>) {
        let (kind, level) = rule_kind(rule);
        let d = self.slots[slot as usize].as_mut().expect("slot in use");
        let mut step_label = String::new();
        let mut step_num = NONE;
        let mut department = NONE;
        let mut deadline = d.due.get();
        let reason;
        // A dossier allowed a working day or less: its apology falls due at the deadline.
        let mut short = false;
        match rule {
            Rule::StepWarning(i) | Rule::StepLevel1(i) | Rule::StepLevel2(i) => {
                let s = &mut d.steps[i];
                s.fired |= match rule {
                    Rule::StepWarning(_) => step_fired::WARNING,
                    Rule::StepLevel1(_) => step_fired::LEVEL1,
                    _ => step_fired::LEVEL2,
                };
                department = s.department;
                deadline = s.due.get();
                let (step, attempt) = (s.step, s.attempt);
                if matches!(rule, Rule::StepLevel1(_)) && d.fault == NONE {
                    d.fault = department;
                }
                reason = match rule {
                    Rule::StepWarning(_) => "step has used its share of the allotted time",
                    Rule::StepLevel1(_) => "step overdue: department head",
                    _ => "step overdue by one more working day: agency leader",
                };
                step_label = step_name(self.names.get(step), attempt);
                step_num = step;
            }
            Rule::Warning => {
                d.fired |= fired::WARNING;
                reason = "dossier has used its share of the allotted time";
            }
            Rule::DueSoon => {
                d.fired |= fired::DUE_SOON | fired::APOLOGY_REQUIRED;
                department = d.department_at_fault();
                reason = "due within one working day";
                short = d.soon_at.get() >= d.due.get();
            }
            Rule::Overdue => {
                d.fired |= fired::OVERDUE;
                department = d.department_at_fault();
                reason = "dossier overdue: one-stop centre director";
            }
            Rule::SecondLateness => {
                d.fired |= fired::SECOND_LATENESS;
                department = d.department_at_fault();
                deadline = d.new_appointment.get();
                reason = "late again after the new appointment: agency leader";
            }
        }
        let apology_overdue = matches!(rule, Rule::Overdue)
            && d.soon_at.get() < d.due.get()
            && d.fired & fired::APOLOGY_REQUIRED != 0
            && d.fired & fired::APOLOGY_ISSUED == 0;
        let mut raised = self.raise(slot, kind, &step_label, step_num, level, at);
        raised.department_id = self.names.shared(department);
        raised.deadline = Some(deadline);
        raised.reason = Cow::Borrowed(reason);
        let agency = self.dossier(slot).agency;
        let stats = self.agency_stats(agency);
        if kind == Kind::Escalation {
            stats.escalations[(level as usize).clamp(1, 3) - 1] += 1;
        }
        if matches!(rule, Rule::DueSoon) {
            stats.apologies_required += 1;
            let mut apology = raised.clone();
            apology.id = raised_id(&apology.dossier_id, Kind::ApologyRequired, "", 0);
            apology.kind = Some(Kind::ApologyRequired);
            apology.level = 0;
            apology.reason = if short {
                "deadline reached with no result: apologise and give a new appointment".into()
            } else {
                "no result one working day before the deadline: apologise and give a new \
                 appointment by the deadline"
                    .into()
            };
            if !short {
                out.push(raised);
            }
            out.push(apology);
            return;
        }
        out.push(raised);
        if apology_overdue {
            self.agency_stats(agency).apologies_overdue += 1;
            let mut overdue = self.raise(slot, Kind::ApologyOverdue, "", NONE, 0, at);
            overdue.department_id = self.names.shared(self.dossier(slot).department_at_fault());
            overdue.deadline = Some(at);
            overdue.reason = "deadline passed with no apology issued".into();
            out.push(overdue);
        }
    }

    /// A raised event about a dossier, with its common fields filled in.
    /// `step_label` names the step in the id (`tham-dinh#2` for a second run), `step` is
    /// its interned id (NONE for dossier-level events).
    pub(crate) fn raise(
        &self,
        slot: u32,
        kind: Kind,
        step_label: &str,
        step: u32,
        level: u32,
        at: i64,
    ) -> Raised {
        let d = self.dossier(slot);
        let (code, field) = &self.procedure_labels[d.procedure as usize];
        Raised {
            id: raised_id(&d.id, kind, step_label, level),
            dossier_id: d.id.clone(),
            kind: Some(kind),
            raised_at: at,
            agency_id: self.names.shared(d.agency),
            step_id: self.names.shared(step),
            level,
            deadline: Some(d.due.get()),
            statutory_deadline: Some(d.statutory.get()),
            procedure_code: code.clone(),
            field: field.clone(),
            channel: d.channel,
            ..Raised::default()
        }
    }

    /// Applies an event to an open dossier (its due timers already fired).
    fn apply_to(
        &mut self,
        slot: u32,
        event: &Event,
        hash: u64,
        out: &mut Vec<Raised>,
    ) -> Result<(), Refusal> {
        if event.occurred_at < self.dossier(slot).received.get() {
            return Err((
                RejectReason::BeforeReceipt,
                format!(
                    "{} at {} is before the dossier was received ({})",
                    event.payload.name(),
                    fmt(event.occurred_at),
                    fmt(self.dossier(slot).received.get())
                ),
            ));
        }
        self.lifecycle(slot, event, out)?;
        match self.slots[slot as usize].as_mut() {
            Some(dossier) => {
                dossier.see(hash);
                self.rearm(slot);
            }
            // The event ended the dossier: its ids moved to the ended ones.
            None => self.remember(&event.dossier_id, hash),
        }
        Ok(())
    }
}

/// The label of a step in raised ids: `tham-dinh`, or `tham-dinh#2` for a second run.
pub(crate) fn step_name(step: &str, attempt: u16) -> String {
    if attempt <= 1 {
        step.to_owned()
    } else {
        format!("{step}#{attempt}")
    }
}

/// A stable 64-bit hash of an event id: XXH3, a published algorithm, so the value is the
/// same on every run and every version (it may be stored with a dossier's state).
pub(crate) fn hash_id(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// RFC 3339 (UTC) for messages.
pub(crate) fn fmt(t: i64) -> String {
    dunghan_calendar::from_ts(t).to_rfc3339()
}
