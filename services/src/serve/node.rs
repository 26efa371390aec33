//! The embedded node: the engine and the durable store under one lock. Publishing stores
//! each event and what it raised in one transaction before replying; a clock tick advances
//! the engine to the wall clock; a restart replays the stored events and stores only the
//! raised events whose ids are not stored yet, so nothing acknowledged is lost and nothing
//! is raised twice.

use std::path::Path;

use dunghan_core::{Engine, Kind, Raised};
use dunghan_proto::v1::{DossierEvent, EventResult, PublishStatus, SlaEvent};

use super::metrics::Metrics;
use super::store::{ClosureChange, Logged, Store};
use crate::files::CalendarSpec;
use dunghan_calendar::CalendarSet;
use std::sync::{Arc, RwLock};

/// The calendars the services read; replaced whole when an administrator changes them.
pub(crate) type SharedCalendars = Arc<RwLock<Arc<CalendarSet>>>;
use crate::convert::{to_event, to_sla_event};

/// Which open dossiers a list asks for: filters (empty = any), after which id, how many.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenFilter<'a> {
    pub(crate) agency: &'a str,
    pub(crate) department: &'a str,
    pub(crate) state: Option<dunghan_core::OpenState>,
    pub(crate) after: &'a str,
    pub(crate) limit: usize,
}

impl OpenFilter<'_> {
    /// The matching dossiers of `all`, by id, at most `limit`, and whether more follow.
    pub(crate) fn page(
        &self,
        all: impl Iterator<Item = dunghan_core::OpenDossier>,
    ) -> (Vec<dunghan_core::OpenDossier>, bool) {
        let mut matching: Vec<_> = all
            .filter(|d| {
                (self.agency.is_empty() || &*d.agency_id == self.agency)
                    && (self.department.is_empty() || &*d.department_id == self.department)
                    && self.state.is_none_or(|s| d.state == s)
                    && &*d.dossier_id > self.after
            })
            .collect();
        matching.sort_unstable_by(|a, b| a.dossier_id.cmp(&b.dossier_id));
        let more = matching.len() > self.limit;
        matching.truncate(self.limit);
        (matching, more)
    }
}

/// Raised events that go out together (a publish's, a slice of fired timers): what
/// `WatchSlaEvents` subscribers receive, shared with the store's deferred writes.
pub(crate) type Slice = Arc<Vec<SlaEvent>>;

/// Engine plus store.
#[derive(Debug)]
pub(crate) struct Node {
    engine: Engine,
    store: Store,
    metrics: Metrics,
    /// Newly raised events, for `WatchSlaEvents` subscribers.
    watchers: tokio::sync::broadcast::Sender<Slice>,
    /// What the moment being prepared raised ([`Node::prepare`]), converted, held until
    /// the moment comes; minus `withdrawn`.
    prepared: Vec<Vec<SlaEvent>>,
    /// Dossiers whose prepared firing an event undid before the moment.
    withdrawn: std::collections::HashSet<Arc<str>>,
    /// The calendar file the node was started with, plus the closures added since.
    spec: CalendarSpec,
    calendars: SharedCalendars,
    /// Calendar changes applied so far (numbers the DEADLINE_SHIFTED causes).
    changes: u64,
}

/// How many slices a slow watcher may fall behind before it is dropped (the ticker waits a
/// little for watchers before firing a slice that would overrun it).
pub(crate) const WATCH_BUFFER: usize = 16_384;

/// Dossiers whose due timers one [`Node::tick`] fires: a burst (100 000 deadlines at
/// 17:00) is sent to watchers slice by slice, so the first raised events go out while the
/// rest are fired, and requests get the lock between slices.
pub(crate) const FIRE_SLICE: usize = 4_096;

/// Log entries a restart replays at a time (the log is never all in memory).
const REPLAY_CHUNK: usize = 65_536;

/// The service's clock in Unix seconds (the engine itself never reads a clock): the wall
/// clock, or the simulated one of `[clock] start` (see `crate::clock`).
pub(crate) fn wall_clock() -> i64 {
    crate::clock::now()
}

/// Applies one wire event; a malformed one is refused like the engine refuses bad input.
fn apply(engine: &mut Engine, event: &DossierEvent, out: &mut Vec<Raised>) {
    match to_event(event.clone()) {
        Ok(e) => engine.apply(&e, out),
        Err(why) => {
            let id = if event.event_id.is_empty() {
                "-"
            } else {
                &event.event_id
            };
            out.push(engine.reject_malformed(&event.dossier_id, id, why));
        }
    }
}

/// Runs `f` on the shared node off the async threads (store commits wait for the disk);
/// a failure is logged and becomes `RESOURCE_EXHAUSTED` when the disk is full, else
/// `INTERNAL`.
pub(crate) async fn run_on<T: Send + 'static>(
    node: &Arc<std::sync::Mutex<Node>>,
    f: impl FnOnce(&mut Node) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, tonic::Status> {
    let node = node.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard = node
            .lock()
            .map_err(|_| anyhow::anyhow!("node lock poisoned"))?;
        f(&mut guard)
    })
    .await
    .map_err(|e| tonic::Status::internal(e.to_string()))?
    .map_err(|e| {
        tracing::error!(error = %e, "node failure");
        match e.downcast_ref::<super::store::DiskFull>() {
            Some(full) => tonic::Status::resource_exhausted(full.to_string()),
            None => tonic::Status::internal(format!("node: {e}")),
        }
    })
}

impl Node {
    /// Opens the store under `data_dir` and rebuilds the engine from the stored events.
    pub(crate) fn open(
        data_dir: &Path,
        engine: Engine,
        metrics: Metrics,
        spec: CalendarSpec,
        calendars: SharedCalendars,
    ) -> anyhow::Result<Node> {
        let store = Store::open(data_dir)?;
        let mut node = Node {
            engine,
            store,
            metrics,
            watchers: tokio::sync::broadcast::channel(WATCH_BUFFER).0,
            prepared: Vec::new(),
            withdrawn: Default::default(),
            spec,
            calendars,
            changes: 0,
        };
        let (mut events, mut restored, mut fresh, mut next) = (0, 0, 0, 0);
        loop {
            let (chunk, after) = node.store.log(next, REPLAY_CHUNK)?;
            if chunk.is_empty() {
                break;
            }
            let mut raised = Vec::new();
            for (arrival, entry) in &chunk {
                // The same present as when it arrived, so the same decisions.
                node.engine.set_present(*arrival);
                match entry {
                    Logged::Event(event) => apply(&mut node.engine, event, &mut raised),
                    Logged::Closure(closure) => node.close(*arrival, closure, &mut raised)?,
                    Logged::Schedule(text) => node.schedule(*arrival, text, &mut raised)?,
                }
            }
            events += chunk.len();
            restored += raised.len();
            fresh += node.store_raised(raised)?;
            next = after;
        }
        tracing::info!(
            events,
            raised = restored,
            newly_stored = fresh,
            "restored the engine from the store"
        );
        node.catch_up()?;
        node.refresh_open_by_state(wall_clock());
        Ok(node)
    }

    fn store_raised(&mut self, raised: Vec<Raised>) -> anyhow::Result<usize> {
        let wire: Vec<SlaEvent> = raised.iter().map(to_sla_event).collect();
        let fresh = self.store.append(&[], wire)?;
        let n = fresh.len();
        self.observe(&Arc::new(fresh));
        Ok(n)
    }

    /// A receiver of the raised events from now on.
    pub(crate) fn watch(&self) -> tokio::sync::broadcast::Receiver<Slice> {
        self.watchers.subscribe()
    }

    /// Sends newly raised events to the watchers, then counts them in the metrics.
    fn observe(&self, fresh: &Slice) {
        self.send(fresh);
        self.count(fresh);
    }

    /// Sends newly raised events to the watchers.
    fn send(&self, fresh: &Slice) {
        if !fresh.is_empty() && self.watchers.receiver_count() > 0 {
            // A subscriber that left meanwhile is not an error.
            let _ = self.watchers.send(fresh.clone());
        }
    }

    /// Counts newly raised events in the metrics.
    fn count(&self, fresh: &[SlaEvent]) {
        self.metrics.observe(fresh);
        for r in fresh
            .iter()
            .filter(|r| r.kind() == dunghan_proto::v1::SlaEventKind::Outcome)
        {
            if let Some(ratio) = self.time_ratio(r) {
                self.metrics.time_ratio.observe(ratio);
            }
        }
        self.metrics.open.set(self.engine.open_dossiers() as i64);
        self.metrics
            .pending_timers
            .set(self.engine.pending_timers() as i64);
    }

    /// Applies a closure to the calendars and the open dossiers (not stored here).
    fn close(&mut self, at: i64, c: &ClosureChange, out: &mut Vec<Raised>) -> anyhow::Result<()> {
        let spec = dunghan_calendar::spec::ClosureSpec {
            from: dunghan_calendar::from_ts(c.from).to_rfc3339(),
            to: dunghan_calendar::from_ts(c.to).to_rfc3339(),
            reason: c.reason.clone(),
        };
        if c.office.is_empty() {
            self.spec.file.closure.push(spec);
        } else {
            self.spec
                .file
                .office
                .entry(c.office.clone())
                .or_default()
                .closure
                .push(spec);
        }
        self.changes += 1;
        let cause = format!("closure-{}", self.changes);
        self.rebuild(at, &cause, out)
    }

    /// Applies a yearly schedule (TOML) to the calendars and the open dossiers.
    fn schedule(&mut self, at: i64, text: &str, out: &mut Vec<Raised>) -> anyhow::Result<()> {
        let schedule = dunghan_calendar::schedule::parse(text, "SetYearSchedule")?;
        let year = schedule.year;
        self.spec.schedules.push(schedule);
        self.changes += 1;
        let cause = format!("schedule-{year}-{}", self.changes);
        self.rebuild(at, &cause, out)
    }

    /// Rebuilds the calendars from the spec and moves open deadlines accordingly.
    fn rebuild(&mut self, at: i64, cause: &str, out: &mut Vec<Raised>) -> anyhow::Result<()> {
        let set = self.spec.build()?;
        self.engine.replace_calendars(set.clone(), at, cause, out);
        *self
            .calendars
            .write()
            .map_err(|_| anyhow::anyhow!("calendar lock poisoned"))? = Arc::new(set);
        Ok(())
    }

    /// Adds a closure now: calendars change, open deadlines move (DEADLINE_SHIFTED), and
    /// the change is stored in the log so a restart replays it. Returns what it raised.
    pub(crate) fn add_closure(&mut self, closure: ClosureChange) -> anyhow::Result<Vec<SlaEvent>> {
        self.change(Logged::Closure(closure))
    }

    /// Sets a year's schedule now (TOML text, validated first), like [`Node::add_closure`].
    pub(crate) fn set_schedule(&mut self, text: String) -> anyhow::Result<Vec<SlaEvent>> {
        dunghan_calendar::schedule::parse(&text, "toml")?;
        self.change(Logged::Schedule(text))
    }

    fn change(&mut self, change: Logged) -> anyhow::Result<Vec<SlaEvent>> {
        let now = wall_clock();
        self.engine.set_present(now);
        let mut raised = Vec::new();
        match &change {
            Logged::Closure(c) => self.close(now, c, &mut raised)?,
            Logged::Schedule(text) => self.schedule(now, text, &mut raised)?,
            Logged::Event(_) => anyhow::bail!("not a calendar change"),
        }
        self.note_withdrawn();
        let wire: Vec<SlaEvent> = raised.iter().map(to_sla_event).collect();
        let fresh = Arc::new(self.store.append_change(now, &change, wire)?);
        self.observe(&fresh);
        Ok(Arc::unwrap_or_clone(fresh))
    }

    /// Takes the dossiers an event or a change withdrew from the moment being prepared.
    fn note_withdrawn(&mut self) {
        if self.engine.prepared_at().is_some() {
            let withdrawn = self.engine.take_withdrawn();
            self.metrics
                .prepared
                .with_label_values(&["withdrawn"])
                .inc_by(withdrawn.len() as u64);
            self.withdrawn.extend(withdrawn);
        }
    }

    /// Applies and stores a batch; one result per event.
    pub(crate) fn publish(&mut self, events: &[DossierEvent]) -> anyhow::Result<Vec<EventResult>> {
        let now = wall_clock();
        self.engine.set_present(now);
        let mut results = Vec::with_capacity(events.len());
        let mut all_raised = Vec::new();
        // Duplicates change nothing and are not stored again; refused input is, as the record.
        let mut stored: Vec<(i64, &DossierEvent)> = Vec::with_capacity(events.len());
        for event in events {
            let duplicates = self.engine.duplicates();
            let mut raised = Vec::new();
            apply(&mut self.engine, event, &mut raised);
            let rejected = raised
                .iter()
                .find(|r| r.kind() == Kind::Rejected && r.event_id == event.event_id);
            let (status, reason) = if self.engine.duplicates() > duplicates {
                (PublishStatus::Duplicate, String::new())
            } else if let Some(r) = rejected {
                (PublishStatus::Rejected, r.reason.to_string())
            } else {
                (PublishStatus::Accepted, String::new())
            };
            if status != PublishStatus::Duplicate {
                stored.push((now, event));
            }
            let why = rejected
                .and_then(|r| r.reject_reason)
                .map_or("", |w| w.as_str());
            let accepted = (status == PublishStatus::Accepted).then_some(event);
            self.metrics.count_event(status, why, accepted);
            let wire: Vec<SlaEvent> = raised.iter().map(to_sla_event).collect();
            all_raised.extend(wire.iter().cloned());
            results.push(EventResult {
                event_id: event.event_id.clone(),
                status: status as i32,
                reason,
                raised: wire,
            });
        }
        self.note_withdrawn();
        let fresh = self.store.append(&stored, all_raised)?;
        self.observe(&Arc::new(fresh));
        Ok(results)
    }

    /// Receipt to result over receipt to deadline, for a finished dossier's OUTCOME.
    fn time_ratio(&self, outcome: &SlaEvent) -> Option<f64> {
        if outcome.outcome() == dunghan_proto::v1::Outcome::Unspecified {
            return None;
        }
        let computed = format!("{}:deadline_computed:-:0", outcome.dossier_id);
        let (_, raised) = self.store.timeline(&outcome.dossier_id).ok()?;
        let received = raised
            .iter()
            .find(|r| r.id == computed)?
            .raised_at
            .as_ref()?
            .seconds;
        let (done, due) = (
            outcome.raised_at.as_ref()?.seconds,
            outcome.deadline.as_ref()?.seconds,
        );
        (due > received).then(|| (done - received) as f64 / (due - received) as f64)
    }

    /// Advances the engine to `now_ms` (Unix ms): first sends what the prepared moment
    /// raised once it has come ([`Node::prepare`]), then fires the due timers of at most
    /// [`FIRE_SLICE`] dossiers; returns how many raised events were new and whether more
    /// are due (call again).
    pub(crate) fn tick(&mut self, now_ms: i64) -> anyhow::Result<(usize, bool)> {
        let now = now_ms.div_euclid(1000);
        let mut n = 0;
        if let Some(released) = self.engine.release(now) {
            let withdrawn = std::mem::take(&mut self.withdrawn);
            let mut slices = std::mem::take(&mut self.prepared);
            if !withdrawn.is_empty() {
                for slice in &mut slices {
                    slice.retain(|r| !withdrawn.contains(r.dossier_id.as_str()));
                }
            }
            let started = std::time::Instant::now();
            n += self.send_fired(slices)?;
            tracing::debug!(
                events = n,
                ms = started.elapsed().as_secs_f64() * 1000.0,
                "sent what the prepared moment raised"
            );
            drop(released); // after the sending: freeing it takes a few ms
        }
        let lag = self.engine.next_timer().map_or(0, |t| (now - t).max(0));
        self.metrics.timer_lag.set(lag as f64);
        let mut raised = Vec::new();
        let more = self.engine.advance_some(now, FIRE_SLICE, &mut raised);
        if !raised.is_empty() {
            n += self.send_fired(vec![raised.iter().map(to_sla_event).collect()])?;
        }
        Ok((n, more))
    }

    /// Fires ahead of time the timers of at most [`FIRE_SLICE`] dossiers due at `at` (Unix
    /// s, a crowded moment in the future: [`Node::crowded_moment`]) and holds what they raise, converted,
    /// until [`Node::tick`] reaches the moment: a 17:00 burst is computed in the seconds
    /// before and only sent at 17:00. Returns whether more are due at `at`. An event for a
    /// prepared dossier before the moment undoes its firing (the engine says which); a
    /// crash before the moment loses nothing, since nothing of it was stored or sent.
    pub(crate) fn prepare(&mut self, at: i64) -> bool {
        let mut raised = Vec::new();
        let before = self.engine.prepared_dossiers();
        let more = self.engine.prepare_some(at, FIRE_SLICE, &mut raised);
        self.metrics
            .prepared
            .with_label_values(&["prepared"])
            .inc_by((self.engine.prepared_dossiers() - before) as u64);
        if !raised.is_empty() {
            self.prepared
                .push(raised.iter().map(to_sla_event).collect());
        }
        more
    }

    /// The earliest moment in `(after, upto]` at which at least `min` dossiers fall due.
    pub(crate) fn crowded_moment(&self, after: i64, upto: i64, min: usize) -> Option<i64> {
        self.engine
            .crowded_moment(after, upto, min)
            .map(|(at, _)| at)
    }

    /// Dossiers prepared for the moment and not withdrawn.
    pub(crate) fn prepared_dossiers(&self) -> usize {
        self.engine.prepared_dossiers()
    }

    /// The moment being prepared (Unix s), if any.
    pub(crate) fn prepared_at(&self) -> Option<i64> {
        self.engine.prepared_at()
    }

    /// Sends raised events fired now, in slices. New ones (later than anything stored,
    /// [`Store::is_new`]) go to the watchers at once, are counted and are written
    /// afterwards by [`Node::write_deferred`], so a burst goes out at the speed of the
    /// engine, not of the disk; others (a restart's catch-up, a clock set back) are looked
    /// up and stored first. All slices go out before any is counted in the metrics. Each
    /// one's lag (sent at minus its rule's moment) goes to the fire-lag histogram. Returns
    /// how many were new.
    fn send_fired(&mut self, slices: Vec<Vec<SlaEvent>>) -> anyhow::Result<usize> {
        let mut sent = Vec::with_capacity(slices.len());
        // A failed store write keeps its events pending in the store (counted and sent when
        // a later write stores them); the other slices still go out.
        let mut failed = None;
        for wire in slices {
            // Usually all of a slice is new: kept as it is, not copied into a second vector.
            let (new, known): (Vec<SlaEvent>, Vec<SlaEvent>) =
                if wire.iter().all(|r| self.store.is_new(r)) {
                    (wire, Vec::new())
                } else {
                    wire.into_iter().partition(|r| self.store.is_new(r))
                };
            let fresh = if known.is_empty() {
                Vec::new()
            } else {
                self.store.append(&[], known).unwrap_or_else(|e| {
                    failed.get_or_insert(e);
                    Vec::new()
                })
            };
            let (new, fresh) = (Arc::new(new), Arc::new(fresh));
            self.send(&fresh);
            self.send(&new);
            sent.push((crate::clock::now_ms() as f64 / 1000.0, fresh, new));
        }
        let mut n = 0;
        for (sent_at, fresh, new) in sent {
            for r in fresh.iter().chain(new.iter()) {
                if let Some(t) = &r.raised_at {
                    let moment = t.seconds as f64 + f64::from(t.nanos) / 1e9;
                    self.metrics.fire_lag.observe((sent_at - moment).max(0.0));
                }
            }
            self.count(&fresh);
            self.count(&new);
            n += fresh.len() + new.len();
            self.store.defer(new);
        }
        failed.map_or(Ok(n), Err)
    }

    /// Writes a chunk of the raised events sent by [`Node::tick`] and not written yet;
    /// returns how many are still to write.
    pub(crate) fn write_deferred(&mut self) -> anyhow::Result<usize> {
        if self.store.deferred() > 0 {
            let fresh = self.store.write_deferred()?;
            self.observe(&Arc::new(fresh));
        }
        Ok(self.store.deferred())
    }

    /// Fires everything due by the clock and writes it (before serving).
    pub(crate) fn catch_up(&mut self) -> anyhow::Result<()> {
        while self.tick(crate::clock::now_ms())?.1 {}
        self.write_all_deferred()
    }

    /// Writes every raised event sent and not written yet (after a catch-up, at a stop).
    pub(crate) fn write_all_deferred(&mut self) -> anyhow::Result<()> {
        while self.write_deferred()? > 0 {}
        Ok(())
    }

    /// Slices sent to watchers that the slowest of them has not taken yet.
    pub(crate) fn watch_backlog(&self) -> usize {
        self.watchers.len()
    }

    /// Open dossiers.
    pub(crate) fn open_count(&self) -> usize {
        self.engine.open_dossiers()
    }

    /// The engine's next timer (Unix seconds), if any.
    pub(crate) fn next_timer(&self) -> Option<i64> {
        self.engine.next_timer()
    }

    /// Recomputes the open-by-state gauge at `now`: a pass over every open dossier (tens of
    /// ms at 1 M), so the ticker runs it every 15 s and not when a timer is about to fire.
    pub(crate) fn refresh_open_by_state(&self, now: i64) {
        let counts = self.engine.count_open_by_state(now);
        for (state, n) in ["in_time", "due_soon", "overdue", "paused", "result_ready"]
            .iter()
            .zip(counts)
        {
            self.metrics
                .open_by_state
                .with_label_values(&[state])
                .set(n as i64);
        }
    }

    /// Publishes a JSON-lines file of `DossierEvent`s in batches; a line that is not an
    /// event is refused (REJECTED, stored, with its line number). Returns (accepted,
    /// duplicates, rejected).
    pub(crate) fn ingest(&mut self, path: &Path) -> anyhow::Result<(usize, usize, usize)> {
        use std::io::BufRead;
        let file = std::fs::File::open(path)
            .map_err(|e| anyhow::anyhow!("cannot read events file {}: {e}", path.display()))?;
        let mut counts = (0, 0, 0);
        let mut batch = Vec::new();
        let count = |results: Vec<EventResult>, counts: &mut (usize, usize, usize)| {
            for r in results {
                match r.status() {
                    PublishStatus::Accepted => counts.0 += 1,
                    PublishStatus::Duplicate => counts.1 += 1,
                    _ => counts.2 += 1,
                }
            }
        };
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            match dunghan_proto::json::from_str(&line) {
                Ok(event) => batch.push(event),
                Err(e) => {
                    let why = format!("{} line {}: invalid event: {e}", path.display(), n + 1);
                    let refused = self
                        .engine
                        .reject_malformed("", &format!("line-{}", n + 1), why);
                    self.store_raised(vec![refused])?;
                    counts.2 += 1;
                }
            }
            if batch.len() == super::ingest_api::MAX_BATCH {
                let results = self.publish(&std::mem::take(&mut batch))?;
                count(results, &mut counts);
            }
        }
        let results = self.publish(&batch)?;
        count(results, &mut counts);
        Ok(counts)
    }

    /// Open dossiers matching `filter` (a page, and whether more follow).
    pub(crate) fn open_dossiers(
        &self,
        filter: &OpenFilter<'_>,
    ) -> (Vec<dunghan_core::OpenDossier>, bool) {
        filter.page(self.engine.open_dossiers_at(wall_clock()))
    }

    /// Rates over `[from, to)` grouped by `by` (a full scan of the store).
    pub(crate) fn rates(
        &self,
        from: i64,
        to: i64,
        by: dunghan_proto::v1::RateDimension,
    ) -> anyhow::Result<(Vec<dunghan_proto::v1::Rates>, dunghan_proto::v1::Rates)> {
        let (events, raised) = self.store.scan()?;
        Ok(super::rates::compute(&events, &raised, from, to, by))
    }

    pub(crate) fn timeline(
        &self,
        dossier: &str,
    ) -> anyhow::Result<(Vec<DossierEvent>, Vec<SlaEvent>)> {
        self.store.timeline(dossier)
    }
}
