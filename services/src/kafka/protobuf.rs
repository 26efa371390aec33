//! Protobuf written by hand on the record path: a raised event as `SlaEvent`, straight
//! from the engine's `Raised` (no `SlaEvent` of eight owned strings built first), and a
//! changelog entry. Varints are inlined pushes into a buffer with room; prost's go
//! through `BufMut::put_slice` a byte at a time, out of line. The bytes are the ones prost
//! writes (tested), so consumers see no difference.

use dunghan_core::Raised;
use prost::encoding::encoded_len_varint;

use crate::convert::{sla_channel, sla_kind, sla_outcome};

/// Wire types.
const VARINT: u32 = 0;
const LENGTH_DELIMITED: u32 = 2;

/// Appends `value` in LEB128, as protobuf writes varints (inlined: the caller's buffer
/// has room, so each byte is a store and a length check).
#[inline]
pub(crate) fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a field's key.
#[inline]
fn key(out: &mut Vec<u8>, tag: u32, wire_type: u32) {
    varint(out, u64::from(tag << 3 | wire_type));
}

/// Appends an `int64`/`uint32`/enum field, left out when zero (proto3); a negative value
/// takes ten bytes.
#[inline]
pub(crate) fn int(out: &mut Vec<u8>, tag: u32, value: i64) {
    if value != 0 {
        key(out, tag, VARINT);
        varint(out, value as u64);
    }
}

/// How many bytes [`int`] appends.
pub(crate) fn int_len(tag: u32, value: i64) -> usize {
    if value == 0 {
        0
    } else {
        encoded_len_varint(u64::from(tag << 3)) + encoded_len_varint(value as u64)
    }
}

/// Appends the key and length of a length-delimited field.
#[inline]
pub(crate) fn delimited(out: &mut Vec<u8>, tag: u32, len: usize) {
    key(out, tag, LENGTH_DELIMITED);
    varint(out, len as u64);
}

/// How many bytes [`delimited`] appends, content included.
pub(crate) fn delimited_len(tag: u32, len: usize) -> usize {
    encoded_len_varint(u64::from(tag << 3 | LENGTH_DELIMITED))
        + encoded_len_varint(len as u64)
        + len
}

/// A `string` field, left out when empty.
#[inline]
fn string(out: &mut Vec<u8>, tag: u32, value: &str) {
    if !value.is_empty() {
        delimited(out, tag, value.len());
        out.extend_from_slice(value.as_bytes());
    }
}

/// A `google.protobuf.Timestamp` or `Duration` field of whole seconds (present, even at
/// zero, when `Some`).
#[inline]
fn seconds(out: &mut Vec<u8>, tag: u32, value: Option<i64>) {
    let Some(s) = value else { return };
    delimited(out, tag, int_len(1, s));
    int(out, 1, s);
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
            let mut out = Vec::new();
            varint(&mut out, v);
            let mut want = Vec::new();
            prost::encoding::encode_varint(v, &mut want);
            assert_eq!(out, want, "{v}");
            assert_eq!(
                int_len(1, v as i64),
                if v == 0 { 0 } else { 1 + want.len() }
            );
        }
    }
}
