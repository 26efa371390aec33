//! A dossier's applied history, kept as its changelog value: the encoded `DossierHistory`
//! grows by one entry per event applied, a checkpoint copies it as it is, and it is
//! decoded only to re-apply it (a restore, a timeline, rates). Kept decoded, every entry
//! and its event were two allocations, and every checkpoint that found the dossier
//! changed encoded the whole history again.

use dunghan_proto::v1::ChangelogEntry;
use prost::encoding::{decode_key, decode_varint, WireType};
use prost::Message;

use super::protobuf::{delimited, delimited_len, int, int_len};

/// `DossierHistory.entries`.
const ENTRIES: u32 = 1;
/// `ChangelogEntry` fields.
const OFFSET: u32 = 1;
const PRESENT: u32 = 2;
const STREAM_TIME: u32 = 3;
const EVENT: u32 = 4;

/// One dossier's history, encoded.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct History {
    /// A `DossierHistory` message: one length-delimited `entries` field per entry.
    bytes: Vec<u8>,
    /// Input offset of the last entry (`i64::MIN` while there is none).
    last_offset: i64,
    /// Changed since its partition's last checkpoint took it (see [`History::mark_unsaved`]).
    unsaved: bool,
}

impl History {
    /// A history as read from the changelog, checked ([`History::unchecked`], then
    /// [`History::check`]).
    #[cfg(test)]
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> anyhow::Result<History> {
        let mut history = History::unchecked(bytes);
        history.check()?;
        Ok(history)
    }

    /// A history as read from the changelog, not yet checked: [`History::check`] comes
    /// before any other use. A restore reads every history on one thread and checks each
    /// on its partition's, in the map it was read into.
    pub(crate) fn unchecked(bytes: Vec<u8>) -> History {
        History {
            bytes,
            last_offset: i64::MIN,
            unsaved: false,
        }
    }

    /// Checks the framing of an [`History::unchecked`] history and decodes its last entry;
    /// the others are decoded when it is applied.
    pub(crate) fn check(&mut self) -> anyhow::Result<()> {
        let (mut rest, mut last) = (self.bytes.as_slice(), None);
        while !rest.is_empty() {
            last = Some(next_entry_bytes(&mut rest)?);
        }
        if let Some(entry) = last {
            self.last_offset = ChangelogEntry::decode(entry)?.offset;
        }
        Ok(())
    }

    /// Marks the history changed since the last checkpoint; returns whether it was not
    /// marked yet (its partition then lists it for the next checkpoint, once).
    pub(crate) fn mark_unsaved(&mut self) -> bool {
        !std::mem::replace(&mut self.unsaved, true)
    }

    /// Whether it changed since the last checkpoint, and from now on not (it is saved).
    pub(crate) fn take_unsaved(&mut self) -> bool {
        std::mem::take(&mut self.unsaved)
    }

    /// Appends an entry whose event is `event`, already protobuf-encoded: the bytes
    /// prost writes for `entries { offset present stream_time event }`, fields in tag
    /// order and zeros left out (see `protobuf.rs`), in one allocation of the exact size.
    pub(crate) fn push(&mut self, offset: i64, present: i64, stream_time: i64, event: &[u8]) {
        let event_field = if event.is_empty() {
            0 // proto3 leaves an empty `bytes` field out
        } else {
            delimited_len(EVENT, event.len())
        };
        let entry_len = int_len(OFFSET, offset)
            + int_len(PRESENT, present)
            + int_len(STREAM_TIME, stream_time)
            + event_field;
        let out = &mut self.bytes;
        out.reserve_exact(delimited_len(ENTRIES, entry_len));
        delimited(out, ENTRIES, entry_len);
        int(out, OFFSET, offset);
        int(out, PRESENT, present);
        int(out, STREAM_TIME, stream_time);
        if !event.is_empty() {
            delimited(out, EVENT, event.len());
            out.extend_from_slice(event);
        }
        self.last_offset = offset;
    }

    /// The changelog value.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Input offset of the last entry, if any.
    pub(crate) fn last_offset(&self) -> Option<i64> {
        (!self.bytes.is_empty()).then_some(self.last_offset)
    }

    /// The entries, decoded one by one.
    pub(crate) fn entries(&self) -> impl Iterator<Item = anyhow::Result<ChangelogEntry>> + '_ {
        Entries(&self.bytes)
    }
}

/// The entries of an encoded `DossierHistory` (after an error, none).
struct Entries<'a>(&'a [u8]);

impl Iterator for Entries<'_> {
    type Item = anyhow::Result<ChangelogEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let entry = next_entry(&mut self.0);
        if entry.is_err() {
            self.0 = &[];
        }
        Some(entry)
    }
}

/// Decodes the entry at the start of `buf` and moves past it.
fn next_entry(buf: &mut &[u8]) -> anyhow::Result<ChangelogEntry> {
    Ok(ChangelogEntry::decode(next_entry_bytes(buf)?)?)
}

/// The encoded entry at the start of `buf`, moving past it.
fn next_entry_bytes<'a>(buf: &mut &'a [u8]) -> anyhow::Result<&'a [u8]> {
    let (tag, wire_type) = decode_key(buf)?;
    if tag != ENTRIES || wire_type != WireType::LengthDelimited {
        anyhow::bail!("dossier history: field {tag} ({wire_type:?}) where entries were expected");
    }
    let len = decode_varint(buf)?;
    let len = usize::try_from(len)
        .ok()
        .filter(|len| *len <= buf.len())
        .ok_or_else(|| anyhow::anyhow!("dossier history: an entry runs past the end"))?;
    let (entry, rest) = buf.split_at(len);
    *buf = rest;
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dunghan_proto::v1::DossierHistory;

    fn entries() -> Vec<ChangelogEntry> {
        (0..4)
            .map(|i| ChangelogEntry {
                // Offset 0 first: proto3 leaves zeros out.
                offset: if i == 0 { 0 } else { 10 + i },
                present: 1_795_000_000 + i,
                stream_time: if i == 0 { i64::MIN } else { 1_795_000_000 },
                // The second entry's event is empty: proto3 leaves the field out.
                event: vec![i as u8 + 1; if i == 1 { 0 } else { 40 * i as usize + 1 }],
            })
            .collect()
    }

    fn history(entries: &[ChangelogEntry]) -> History {
        let mut h = History::default();
        for e in entries {
            h.push(e.offset, e.present, e.stream_time, &e.event);
        }
        h
    }

    #[test]
    fn a_history_grown_entry_by_entry_is_the_dossier_history_message() {
        let entries = entries();
        let h = history(&entries);
        let message = DossierHistory {
            entries: entries.clone(),
        };
        assert_eq!(h.bytes(), message.encode_to_vec());
        assert_eq!(h.entries().collect::<Result<Vec<_>, _>>().unwrap(), entries);
        assert_eq!(h.last_offset(), Some(13));
        let read = History::from_bytes(message.encode_to_vec()).unwrap();
        assert_eq!(read, h, "read back from the changelog, the same history");
        assert_eq!(History::default().last_offset(), None);
        assert_eq!(History::from_bytes(Vec::new()).unwrap().last_offset(), None);
    }

    #[test]
    fn a_damaged_history_is_an_error_not_a_panic() {
        let entries = entries();
        let bytes = history(&entries).bytes().to_vec();
        for cut in 0..bytes.len() {
            // A cut between two entries leaves the entries before it; any other is an error.
            if let Ok(h) = History::from_bytes(bytes[..cut].to_vec()) {
                let read: Vec<_> = h.entries().map(Result::unwrap).collect();
                assert_eq!(read, entries[..read.len()], "cut at {cut}");
                assert_eq!(h.bytes().len(), cut);
            }
        }
        assert!(History::from_bytes(bytes[..bytes.len() - 1].to_vec()).is_err());
        assert!(
            History::from_bytes(vec![0x10, 0x01]).is_err(),
            "field 2 varint"
        );
        let h = History {
            bytes: vec![0x0a, 0x05, 0x08],
            ..History::default()
        };
        let decoded: Vec<_> = h.entries().collect();
        assert_eq!(decoded.len(), 1, "one error, then nothing");
        assert!(decoded[0].is_err());
    }
}
