//! The embedded node's durable store (redb, one file under the data directory): every
//! published event in arrival order, every raised event by id, and a per-dossier index.
//!
//! redb: a pure-Rust, single-file, ACID embedded database with MVCC reads and durable
//! commits (fsync before `commit` returns); no C toolchain or server process to manage.
//! State is not stored: the engine is deterministic, so a restart replays the events and
//! the raised-event table (keyed by the deterministic ids) suppresses what was already raised.
//!
//! A failed write (a full disk) leaves redb refusing every later operation until the file
//! is reopened, and leaves the engine ahead of the store (it applied the batch before the
//! write). So the store reopens the file at once (reads keep working) and keeps what it
//! could not write: the next write that succeeds stores it first, in order. Nothing the
//! engine holds is missing from the store once a write succeeds again.

use std::path::{Path, PathBuf};

use dunghan_proto::v1::{DossierEvent, SlaEvent};
use prost::Message;
use redb::{Database, ReadableTable, TableDefinition};

use super::node::Slice;

/// seq → arrival Unix seconds (8 bytes, big-endian), a kind byte, then the entry: a
/// `DossierEvent` in protobuf (kind 0) or a calendar closure in JSON (kind 1). One ordered
/// log, so a restart replays events and calendar changes in the order they happened.
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const KIND_EVENT: u8 = 0;
const KIND_CLOSURE: u8 = 1;
const KIND_SCHEDULE: u8 = 2;

/// A closure an administrator added (office empty: the whole province).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct ClosureChange {
    pub(crate) office: String,
    pub(crate) from: i64,
    pub(crate) to: i64,
    pub(crate) reason: String,
}

/// One entry of the log.
#[derive(Debug, Clone)]
pub(crate) enum Logged {
    Event(DossierEvent),
    Closure(ClosureChange),
    /// A yearly schedule's TOML text.
    Schedule(String),
}

fn decode(bytes: &[u8]) -> anyhow::Result<(i64, Logged)> {
    let arrival = i64::from_be_bytes(bytes[..8].try_into()?);
    let entry = match bytes[8] {
        KIND_EVENT => Logged::Event(DossierEvent::decode(&bytes[9..])?),
        KIND_CLOSURE => Logged::Closure(serde_json::from_slice(&bytes[9..])?),
        KIND_SCHEDULE => Logged::Schedule(String::from_utf8(bytes[9..].to_vec())?),
        kind => anyhow::bail!("unknown log entry kind {kind}"),
    };
    Ok((arrival, entry))
}
/// raised event id → the event in protobuf.
const RAISED: TableDefinition<&str, &[u8]> = TableDefinition::new("raised");
/// "dossier\0seq" (seq zero-padded) → seq: a dossier's events in order.
const BY_DOSSIER: TableDefinition<&str, u64> = TableDefinition::new("dossier_events");
/// Facts about the store: [`LATEST_RAISED`].
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
/// The latest `raised_at` (Unix s) of any stored raised event. A raised event whose moment
/// is later cannot be stored already, so a timer firing after it may go out before its
/// write (see [`Store::defer`]).
const LATEST_RAISED: &str = "latest_raised_at";

/// The store; cheap to share behind the node's lock.
#[derive(Debug)]
pub(crate) struct Store {
    /// `None` only while a reopen after a failed write has failed too.
    db: Option<Database>,
    file: PathBuf,
    next_seq: u64,
    /// Log entries (value, dossier of an event) a failed write left unstored, in order.
    pending: Vec<(Vec<u8>, Option<String>)>,
    /// Raised events a failed write left unstored.
    pending_raised: Vec<SlaEvent>,
    /// Raised events already sent to watchers and counted, not written yet (they are new,
    /// see [`Store::defer`]), as the slices they were fired in (kept as they came: a burst
    /// of 200 000 is not copied into one growing vector); one slice per write, never
    /// returned as fresh.
    deferred: std::collections::VecDeque<Slice>,
    /// [`LATEST_RAISED`] as this process opened the store: what a raised event must be
    /// later than to be new without a look-up.
    latest_at_open: i64,
    /// [`LATEST_RAISED`] of what is written or pending.
    latest_raised: i64,
}

/// A write refused because the data directory's file system is full (or over quota):
/// nothing of it was stored. `Publish` answers `RESOURCE_EXHAUSTED` with this message.
#[derive(Debug)]
pub(crate) struct DiskFull {
    pub(crate) file: PathBuf,
    pub(crate) cause: std::io::Error,
}

impl std::fmt::Display for DiskFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the data directory is full: cannot write {} ({}); nothing of this batch was \
             acknowledged: free space in the data directory and publish it again",
            self.file.display(),
            self.cause
        )
    }
}

impl std::error::Error for DiskFull {}

/// Whether an I/O error means "no space left" (ENOSPC) or "over quota" (EDQUOT).
fn is_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    ) || matches!(e.raw_os_error(), Some(28 | 122))
}

/// A redb error, boxed (it is large) for the write path.
fn boxed(e: impl Into<redb::Error>) -> Box<redb::Error> {
    Box::new(e.into())
}

/// Stores the raised events whose id is not stored yet; returns those. `new` ones are
/// known not to be stored (deferred): inserted without a look-up, not returned.
fn store_new(
    write: &redb::WriteTransaction,
    raised: &[SlaEvent],
    new: &[SlaEvent],
    latest: i64,
) -> Result<Vec<SlaEvent>, Box<redb::Error>> {
    let mut stored = write.open_table(RAISED).map_err(boxed)?;
    let mut fresh = Vec::with_capacity(raised.len());
    for r in raised {
        if stored.get(r.id.as_str()).map_err(boxed)?.is_none() {
            stored
                .insert(r.id.as_str(), r.encode_to_vec().as_slice())
                .map_err(boxed)?;
            fresh.push(r.clone());
        }
    }
    for r in new {
        stored
            .insert(r.id.as_str(), r.encode_to_vec().as_slice())
            .map_err(boxed)?;
    }
    let mut meta = write.open_table(META).map_err(boxed)?;
    meta.insert(LATEST_RAISED, latest).map_err(boxed)?;
    Ok(fresh)
}

/// The latest `raised_at` of `raised`, or `start`.
fn latest_of(start: i64, raised: &[SlaEvent]) -> i64 {
    raised
        .iter()
        .filter_map(|r| r.raised_at.as_ref().map(|t| t.seconds))
        .fold(start, i64::max)
}

fn dossier_key(dossier: &str, seq: u64) -> String {
    format!("{dossier}\0{seq:020}")
}

impl Store {
    /// Opens (or creates) `dir/dunghan.redb`; its log is read back with [`Store::log`].
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Store> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create data directory {}: {e}", dir.display()))?;
        let file = dir.join("dunghan.redb");
        let db = Database::create(&file)?;
        let write = db.begin_write()?;
        {
            write.open_table(EVENTS)?;
            write.open_table(RAISED)?;
            write.open_table(BY_DOSSIER)?;
            let mut meta = write.open_table(META)?;
            if meta.get(LATEST_RAISED)?.is_none() {
                // A store written before this table existed: read it off once.
                let mut latest = i64::MIN;
                for entry in write.open_table(RAISED)?.iter()? {
                    let r = SlaEvent::decode(entry?.1.value())?;
                    latest = latest_of(latest, std::slice::from_ref(&r));
                }
                meta.insert(LATEST_RAISED, latest)?;
            }
        }
        write.commit()?;
        let read = db.begin_read()?;
        let next_seq = read
            .open_table(EVENTS)?
            .last()?
            .map_or(0, |(seq, _)| seq.value() + 1);
        let latest = read
            .open_table(META)?
            .get(LATEST_RAISED)?
            .map_or(i64::MIN, |v| v.value());
        drop(read);
        let store = Store {
            db: Some(db),
            file,
            next_seq,
            pending: Vec::new(),
            pending_raised: Vec::new(),
            deferred: Default::default(),
            latest_at_open: latest,
            latest_raised: latest,
        };
        Ok(store)
    }

    /// Up to `limit` log entries from sequence number `from` on, in order, with the
    /// sequence number after the last: a restart replays the log a chunk at a time, so it
    /// never holds the whole log in memory.
    pub(crate) fn log(&self, from: u64, limit: usize) -> anyhow::Result<(Vec<(i64, Logged)>, u64)> {
        let read = self.reader()?.begin_read()?;
        let table = read.open_table(EVENTS)?;
        let mut entries = Vec::with_capacity(limit.min(1 << 16));
        let mut next = from;
        for entry in table.range(from..)?.take(limit) {
            let (seq, value) = entry?;
            entries.push(decode(value.value())?);
            next = seq.value() + 1;
        }
        Ok((entries, next))
    }

    /// The open database (reopened first if a failed write closed it).
    fn db(&mut self) -> anyhow::Result<&Database> {
        if self.db.is_none() {
            self.db = Some(Database::create(&self.file).map_err(|e| self.failure(e.into()))?);
        }
        Ok(self.db.as_ref().expect("opened above"))
    }

    /// The database for reading.
    fn reader(&self) -> anyhow::Result<&Database> {
        self.db.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "the store {} is closed after a failed write and could not be reopened yet",
                self.file.display()
            )
        })
    }

    /// A write error as returned to callers: `DiskFull` when the disk is full.
    fn failure(&self, e: redb::Error) -> anyhow::Error {
        match e {
            redb::Error::Io(cause) if is_full(&cause) => DiskFull {
                file: self.file.clone(),
                cause,
            }
            .into(),
            e => anyhow::Error::new(e).context(format!("cannot write {}", self.file.display())),
        }
    }

    /// Writes the pending entries, then `entries`, then the raised events not stored yet,
    /// in one transaction; returns the raised events that were new. On failure everything
    /// stays pending (the engine already holds it) and the file is reopened.
    fn write(
        &mut self,
        entries: Vec<(Vec<u8>, Option<String>)>,
        raised: Vec<SlaEvent>,
    ) -> anyhow::Result<Vec<SlaEvent>> {
        self.pending.extend(entries);
        self.latest_raised = latest_of(self.latest_raised, &raised);
        self.pending_raised.extend(raised);
        self.db()?;
        let first = self.next_seq;

        let result = (|| -> Result<Vec<SlaEvent>, Box<redb::Error>> {
            let Some(db) = self.db.as_ref() else {
                return Err(Box::new(redb::Error::PreviousIo));
            };
            let write = db.begin_write().map_err(boxed)?;
            let fresh;
            {
                let mut table = write.open_table(EVENTS).map_err(boxed)?;
                let mut index = write.open_table(BY_DOSSIER).map_err(boxed)?;
                for (i, (bytes, dossier)) in self.pending.iter().enumerate() {
                    let seq = first + i as u64;
                    table.insert(seq, bytes.as_slice()).map_err(boxed)?;
                    if let Some(d) = dossier {
                        index
                            .insert(dossier_key(d, seq).as_str(), seq)
                            .map_err(boxed)?;
                    }
                }
                let new = self.deferred.front().map_or(&[][..], |s| s.as_slice());
                fresh = store_new(&write, &self.pending_raised, new, self.latest_raised)?;
            }
            write.commit().map_err(boxed)?;
            Ok(fresh)
        })();
        match result {
            Ok(fresh) => {
                self.next_seq += self.pending.len() as u64;
                self.pending.clear();
                self.pending_raised.clear();
                self.deferred.pop_front();
                Ok(fresh)
            }
            Err(e) => {
                let error = self.failure(*e);
                tracing::error!(
                    error = %error,
                    pending = self.pending.len(),
                    "store write failed; kept in memory until a write succeeds"
                );
                // redb refuses everything after an I/O error until it is reopened.
                self.db = None;
                if let Err(e) = self.db() {
                    tracing::error!(error = %e, "cannot reopen the store yet");
                }
                Err(error)
            }
        }
    }

    /// Durably appends published events and the events they raised (those whose id is
    /// already stored are skipped); returns the raised events that were new.
    pub(crate) fn append(
        &mut self,
        events: &[(i64, &DossierEvent)],
        raised: Vec<SlaEvent>,
    ) -> anyhow::Result<Vec<SlaEvent>> {
        let entries = events
            .iter()
            .map(|(arrival, event)| {
                let mut bytes = arrival.to_be_bytes().to_vec();
                bytes.push(KIND_EVENT);
                bytes.extend(event.encode_to_vec());
                (bytes, Some(event.dossier_id.clone()))
            })
            .collect();
        self.write(entries, raised)
    }

    /// Whether a raised event is certainly not stored yet: its moment is later than any
    /// stored when this process opened the store. (Within one process the engine raises an
    /// id once; an earlier process may have stored it only at a moment up to that mark.)
    pub(crate) fn is_new(&self, raised: &SlaEvent) -> bool {
        raised
            .raised_at
            .as_ref()
            .is_some_and(|t| t.seconds > self.latest_at_open)
    }

    /// Queues new raised events (see [`Store::is_new`]) that were sent out before being
    /// written. They are deterministic: after a crash before their write, the restart's
    /// replay raises them again and stores them (it sends nothing to watchers).
    pub(crate) fn defer(&mut self, raised: Slice) {
        self.latest_raised = latest_of(self.latest_raised, &raised);
        if !raised.is_empty() {
            self.deferred.push_back(raised);
        }
    }

    /// Raised events sent out and not written yet.
    pub(crate) fn deferred(&self) -> usize {
        self.deferred.iter().map(|s| s.len()).sum()
    }

    /// Writes one slice of the deferred raised events, and anything a failed write left
    /// pending: returns the pending raised events that were new (not sent out yet).
    pub(crate) fn write_deferred(&mut self) -> anyhow::Result<Vec<SlaEvent>> {
        self.write(Vec::new(), Vec::new())
    }

    /// Every stored event with its arrival time, and every raised event (full scans: for
    /// period reports on an embedded node).
    pub(crate) fn scan(&self) -> anyhow::Result<(Vec<DossierEvent>, Vec<SlaEvent>)> {
        let read = self.reader()?.begin_read()?;
        let mut events = Vec::new();
        for entry in read.open_table(EVENTS)?.iter()? {
            if let (_, Logged::Event(e)) = decode(entry?.1.value())? {
                events.push(e);
            }
        }
        let mut raised = Vec::new();
        for entry in read.open_table(RAISED)?.iter()? {
            raised.push(SlaEvent::decode(entry?.1.value())?);
        }
        raised.extend(self.deferred.iter().flat_map(|s| s.iter()).cloned());
        Ok((events, raised))
    }

    /// Durably appends a calendar change (closure or schedule) and the events it raised.
    pub(crate) fn append_change(
        &mut self,
        arrival: i64,
        change: &Logged,
        raised: Vec<SlaEvent>,
    ) -> anyhow::Result<Vec<SlaEvent>> {
        let mut bytes = arrival.to_be_bytes().to_vec();
        match change {
            Logged::Closure(c) => {
                bytes.push(KIND_CLOSURE);
                bytes.extend(serde_json::to_vec(c)?);
            }
            Logged::Schedule(text) => {
                bytes.push(KIND_SCHEDULE);
                bytes.extend(text.as_bytes());
            }
            Logged::Event(_) => anyhow::bail!("events are appended with `append`"),
        }
        self.write(vec![(bytes, None)], raised)
    }

    /// A dossier's stored events (arrival order) and raised events (by id).
    pub(crate) fn timeline(
        &self,
        dossier: &str,
    ) -> anyhow::Result<(Vec<DossierEvent>, Vec<SlaEvent>)> {
        let read = self.reader()?.begin_read()?;
        let index = read.open_table(BY_DOSSIER)?;
        let table = read.open_table(EVENTS)?;
        let (lo, hi) = (format!("{dossier}\0"), format!("{dossier}\u{1}"));
        let mut events = Vec::new();
        for entry in index.range(lo.as_str()..hi.as_str())? {
            let seq = entry?.1.value();
            if let Some(value) = table.get(seq)? {
                if let (_, Logged::Event(e)) = decode(value.value())? {
                    events.push(e);
                }
            }
        }
        // Raised ids start with "dossier:"; ';' is the character after ':'.
        let raised_table = read.open_table(RAISED)?;
        let (lo, hi) = (format!("{dossier}:"), format!("{dossier};"));
        let mut raised = Vec::new();
        for entry in raised_table.range(lo.as_str()..hi.as_str())? {
            raised.push(SlaEvent::decode(entry?.1.value())?);
        }
        // Sent and not written yet (a burst being written): shown as well, in id order.
        let unwritten = self
            .deferred
            .iter()
            .flat_map(|s| s.iter())
            .filter(|r| r.id.starts_with(lo.as_str()));
        raised.extend(unwritten.cloned());
        raised.sort_by(|a, b| a.id.cmp(&b.id));
        Ok((events, raised))
    }
}
