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

/// Stores the raised events whose id is not stored yet; returns those.
fn store_new(
    write: &redb::WriteTransaction,
    raised: &[SlaEvent],
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
    Ok(fresh)
}

fn dossier_key(dossier: &str, seq: u64) -> String {
    format!("{dossier}\0{seq:020}")
}

impl Store {
    /// Opens (or creates) `dir/dunghan.redb`; returns the stored events in arrival order.
    pub(crate) fn open(dir: &Path) -> anyhow::Result<(Store, Vec<(i64, Logged)>)> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create data directory {}: {e}", dir.display()))?;
        let file = dir.join("dunghan.redb");
        let db = Database::create(&file)?;
        let write = db.begin_write()?;
        {
            write.open_table(EVENTS)?;
            write.open_table(RAISED)?;
            write.open_table(BY_DOSSIER)?;
        }
        write.commit()?;
        let mut events = Vec::new();
        let mut next_seq = 0;
        {
            let read = db.begin_read()?;
            let table = read.open_table(EVENTS)?;
            for entry in table.iter()? {
                let (seq, value) = entry?;
                events.push(decode(value.value())?);
                next_seq = seq.value() + 1;
            }
        }
        let store = Store {
            db: Some(db),
            file,
            next_seq,
            pending: Vec::new(),
            pending_raised: Vec::new(),
        };
        Ok((store, events))
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
                fresh = store_new(&write, &self.pending_raised)?;
            }
            write.commit().map_err(boxed)?;
            Ok(fresh)
        })();
        match result {
            Ok(fresh) => {
                self.next_seq += self.pending.len() as u64;
                self.pending.clear();
                self.pending_raised.clear();
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
        Ok((events, raised))
    }
}
