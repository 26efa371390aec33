//! Protobuf written by hand on the record path: a raised event as `SlaEvent`, straight
//! from the engine's `Raised` (no `SlaEvent` of eight owned strings built first), and
//! the head of a changelog entry. Each varint goes to the buffer in one piece, where
//! prost writes a `Vec` a byte at a time with a capacity check per byte. The bytes are
//! the ones prost writes (tested), so consumers see no difference.

use dunghan_core::Raised;

use crate::convert::{sla_channel, sla_kind, sla_outcome};

/// Wire types.
const VARINT: u32 = 0;
const LENGTH_DELIMITED: u32 = 2;

/// Varints written on the stack: room for four of ten bytes each.
pub(crate) struct Varints {
    buf: [u8; 40],
    len: usize,
}

impl Default for Varints {
    fn default() -> Varints {
        Varints {
            buf: [0; 40],
            len: 0,
        }
    }
}

impl Varints {
    /// LEB128, as protobuf writes it.
    pub(crate) fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf[self.len] = (value as u8 & 0x7f) | 0x80;
            self.len += 1;
            value >>= 7;
        }
        self.buf[self.len] = value as u8;
        self.len += 1;
    }

    /// A field's key.
    pub(crate) fn key(&mut self, tag: u32, wire_type: u32) {
        self.varint(u64::from(tag << 3 | wire_type));
    }

    /// An `int64`/`uint32`/enum field, left out when zero (proto3); a negative value
    /// takes ten bytes.
    pub(crate) fn int(&mut self, tag: u32, value: i64) {
        if value != 0 {
            self.key(tag, VARINT);
            self.varint(value as u64);
        }
    }

    /// The key and length of a length-delimited field.
    pub(crate) fn delimited(&mut self, tag: u32, len: usize) {
        self.key(tag, LENGTH_DELIMITED);
        self.varint(len as u64);
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Appends `head`'s varints to `out`.
fn put(out: &mut Vec<u8>, head: Varints) {
    out.extend_from_slice(head.bytes());
}

/// A `string` field, left out when empty.
fn string(out: &mut Vec<u8>, tag: u32, value: &str) {
    if !value.is_empty() {
        let mut head = Varints::default();
        head.delimited(tag, value.len());
        put(out, head);
        out.extend_from_slice(value.as_bytes());
    }
}

/// A scalar field.
fn int(out: &mut Vec<u8>, tag: u32, value: i64) {
    let mut head = Varints::default();
    head.int(tag, value);
    put(out, head);
}

/// A `google.protobuf.Timestamp` or `Duration` field of whole seconds (present, even at
/// zero, when `Some`).
fn seconds(out: &mut Vec<u8>, tag: u32, value: Option<i64>) {
    let Some(s) = value else { return };
    let mut inner = Varints::default();
    inner.int(1, s);
    let mut head = Varints::default();
    head.delimited(tag, inner.len());
    put(out, head);
    put(out, inner);
}

/// Appends raised event `r` as the `SlaEvent` that `convert::to_sla_event` makes of it.
pub(crate) fn encode_raised(r: &Raised, out: &mut Vec<u8>) {
    string(out, 1, &r.id);
    string(out, 2, &r.dossier_id);
    int(out, 3, sla_kind(r.kind()) as i64);
    seconds(out, 4, Some(r.raised_at));
    string(out, 5, &r.agency_id);
    string(out, 6, &r.department_id);
    string(out, 7, &r.step_id);
    int(out, 8, i64::from(r.level));
    seconds(out, 9, r.deadline);
    int(out, 10, sla_outcome(r.outcome) as i64);
    seconds(out, 11, r.lateness.filter(|l| *l > 0));
    string(out, 12, &r.reason);
    string(out, 13, &r.procedure_code);
    string(out, 14, &r.field);
    int(out, 15, sla_channel(r.channel) as i64);
    string(out, 16, &r.event_id);
    seconds(out, 17, r.statutory_deadline);
    string(out, 18, r.reject_reason.map_or("", |w| w.as_str()));
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::sync::Arc;

    use dunghan_core::{Channel, Kind, Outcome, RejectReason};
    use dunghan_proto::v1::SlaEvent;
    use prost::Message;

    use super::*;
    use crate::convert::to_sla_event;

    /// What a province's scenario raises, and events with every field at an edge.
    fn raised() -> Vec<Raised> {
        let mut all = crate::kafka::scenario_raised();
        assert!(all.len() > 5);
        let full = Raised {
            id: "D-1:outcome".into(),
            dossier_id: Arc::from("D-1"),
            kind: Some(Kind::Outcome),
            raised_at: 1_795_000_000,
            agency_id: Arc::from("SO-TP"),
            department_id: Arc::from("PHONG-Đ"),
            step_id: Arc::from("thẩm-định"),
            level: 3,
            deadline: Some(0),
            statutory_deadline: Some(-5),
            outcome: Some(Outcome::Late),
            lateness: Some(86_400 * 400),
            reason: Cow::Owned("trễ ".repeat(40)),
            procedure_code: Arc::from("1.00123"),
            field: Arc::from("Văn hóa"),
            channel: Channel::Postal,
            event_id: "e-9".into(),
            reject_reason: Some(RejectReason::FutureTimestamp),
        };
        let empty = Raised {
            kind: None,
            raised_at: 0,
            lateness: Some(0),
            ..Raised::default()
        };
        let early = Raised {
            raised_at: -1,
            outcome: Some(Outcome::Early),
            channel: Channel::Online,
            lateness: Some(-3),
            ..full.clone()
        };
        all.extend([full, empty, early]);
        all
    }

    #[test]
    fn a_raised_event_encodes_to_the_bytes_prost_writes_for_its_sla_event() {
        for r in raised() {
            let mut out = Vec::new();
            encode_raised(&r, &mut out);
            let wire = to_sla_event(&r);
            assert_eq!(out, wire.encode_to_vec(), "{r:?}");
            assert_eq!(SlaEvent::decode(out.as_slice()).unwrap(), wire);
        }
    }

    #[test]
    fn varints_are_leb128() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX.into(), u64::MAX] {
            let mut head = Varints::default();
            head.varint(v);
            let mut want = Vec::new();
            prost::encoding::encode_varint(v, &mut want);
            assert_eq!(head.bytes(), want, "{v}");
        }
    }
}
