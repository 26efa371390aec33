//! Record formats in Kafka mode: input payloads (protobuf or proto3 JSON, told apart by
//! the first byte or the `content-type` header), raised events out, and header names.

use dunghan_core::Raised;
use dunghan_proto::v1::DossierEvent;
use prost::Message;
use rdkafka::message::{Header, OwnedHeaders};

use crate::convert::to_sla_event;

/// Header: the raised event's deterministic id (read back to suppress repeats).
pub(crate) const ID_HEADER: &str = "dunghan-id";
/// Header: `partition/offset` of the input record that produced an output record.
pub(crate) const INPUT_HEADER: &str = "dunghan-input";
/// Header: `application/x-protobuf` or `application/json`.
pub(crate) const CONTENT_TYPE: &str = "content-type";
/// Dead-letter headers: a stable reason code and a one-line message.
pub(crate) const REASON_HEADER: &str = "dunghan-reason";
pub(crate) const MESSAGE_HEADER: &str = "dunghan-message";

pub(crate) const PROTOBUF: &str = "application/x-protobuf";
pub(crate) const JSON: &str = "application/json";

/// Whether an input payload's first byte is `{`: then it is JSON whatever its
/// `content-type` says, since a `DossierEvent` in protobuf never starts with that byte
/// (field 15 is a message, wire type 2, never 3). Such a record's headers need not be read
/// (librdkafka parses them on first access: about 7 % of the work per input record).
pub(crate) fn starts_as_json(payload: &[u8]) -> bool {
    payload.first() == Some(&b'{')
}

/// Whether an input payload is JSON: one that [`starts_as_json`] is; for any other the
/// `content-type` header decides; without one, a payload starting with `{` after blanks
/// is JSON (see [`decode`] for the protobuf that looks like it).
fn is_json(payload: &[u8], content_type: Option<&str>) -> bool {
    starts_as_json(payload)
        || match content_type {
            Some(t) if t.contains("json") => true,
            Some(t) if t.contains("proto") => false,
            _ => payload
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|b| *b == b'{'),
        }
}

/// Decodes an input payload, protobuf or JSON (see [`is_json`]), and says which it was.
/// A protobuf event can start with bytes that read as blanks and `{` (a 123-byte event
/// id: `\n{`); one without a `content-type` header that is not JSON is tried as protobuf.
pub(crate) fn decode(
    payload: &[u8],
    content_type: Option<&str>,
) -> Result<(DossierEvent, bool), String> {
    if payload.is_empty() {
        return Err("empty payload".into());
    }
    if !is_json(payload, content_type) {
        return decode_protobuf(payload).map(|e| (e, false));
    }
    // One UTF-8 check of the whole payload: from a `str`, serde_json checks no string
    // again (from bytes it checks each, about 3 % of a partition thread's work).
    let json = std::str::from_utf8(payload)
        .map_err(|e| format!("invalid JSON event: not UTF-8 ({e})"))
        // The common form is read by hand (about half pbjson's time), the rest by pbjson.
        .and_then(|text| {
            dunghan_proto::json::from_str(text).map_err(|e| format!("invalid JSON event: {e}"))
        });
    match json {
        Err(why) if content_type.is_none() && !starts_as_json(payload) => decode_protobuf(payload)
            .map(|e| (e, false))
            .map_err(|_| why),
        json => json.map(|e| (e, true)),
    }
}

fn decode_protobuf(payload: &[u8]) -> Result<DossierEvent, String> {
    DossierEvent::decode(payload).map_err(|e| format!("invalid protobuf event: {e}"))
}

/// Headers of an output record, by (name, value), in order.
pub(crate) fn headers<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> OwnedHeaders {
    pairs
        .into_iter()
        .fold(OwnedHeaders::new(), |headers, (key, value)| {
            headers.insert(Header {
                key,
                value: Some(value.as_bytes()),
            })
        })
}

/// `partition/offset` of an input record (the [`INPUT_HEADER`] value).
pub(crate) fn input_id(partition: i32, offset: i64) -> String {
    let (mut p, mut o) = (itoa::Buffer::new(), itoa::Buffer::new());
    let (p, o) = (p.format(partition), o.format(offset));
    let mut id = String::with_capacity(p.len() + 1 + o.len());
    id.push_str(p);
    id.push('/');
    id.push_str(o);
    id
}

/// A buffer for [`encode`]: room for any raised event but the largest JSON ones.
pub(crate) fn encode_buffer() -> Vec<u8> {
    Vec::with_capacity(1024)
}

/// Encodes a raised event as configured (`json` or protobuf `SlaEvent`) into `out`,
/// emptied first (one buffer serves every record a thread sends; the producer copies it).
pub(crate) fn encode(event: &Raised, json: bool, out: &mut Vec<u8>) {
    out.clear();
    if json {
        // Writing into a Vec fails only if the serializer does, which SlaEvent's cannot.
        let _ = serde_json::to_writer(&mut *out, &to_sla_event(event));
    } else {
        super::protobuf::encode_raised(event, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_ids_are_partition_slash_offset() {
        assert_eq!(input_id(3, 1_234_567), "3/1234567");
        assert_eq!(input_id(0, 0), "0/0");
        assert_eq!(
            input_id(i32::MAX, i64::MAX),
            format!("{}/{}", i32::MAX, i64::MAX)
        );
    }

    #[test]
    fn the_first_byte_decides_before_the_header_and_protobuf_like_json_is_still_protobuf() {
        let json = br#"{"eventId":"e1","dossierId":"D","occurredAt":"2026-10-05T10:00:00+07:00","resultReady":{}}"#;
        // JSON labelled protobuf is JSON: no protobuf event starts with `{`.
        let (event, was_json) = decode(json, Some(PROTOBUF)).unwrap();
        assert!(was_json);
        assert_eq!(event.dossier_id, "D");
        // A 123-byte event id: the protobuf starts with `\n{`, blanks and a brace.
        let long = DossierEvent {
            event_id: "{".repeat(123),
            ..event
        };
        let proto = long.encode_to_vec();
        assert_eq!(&proto[..2], b"\n{");
        assert!(is_json(&proto, None), "taken for JSON at first");
        assert_eq!(decode(&proto, None).unwrap(), (long.clone(), false));
        assert_eq!(decode(&proto, Some(PROTOBUF)).unwrap(), (long, false));
        // Said to be JSON, it is read as JSON and refused as such.
        assert!(decode(&proto, Some(JSON))
            .unwrap_err()
            .starts_with("invalid JSON event"));
        // Garbage that is neither reports the JSON error it looked like.
        assert!(decode(b" {\xff", None)
            .unwrap_err()
            .starts_with("invalid JSON event"));
    }

    #[test]
    fn both_forms_decode_to_the_same_event_and_garbage_says_why() {
        let json = br#" {"eventId":"e1","dossierId":"D","occurredAt":"2026-10-05T10:00:00+07:00","resultReady":{}}"#;
        let (a, was_json) = decode(json, None).unwrap();
        assert!(was_json);
        let b = decode(&a.encode_to_vec(), None).unwrap();
        assert_eq!(b, (a.clone(), false));
        assert_eq!(decode(&a.encode_to_vec(), Some(PROTOBUF)).unwrap().0, a);
        assert!(decode(b"{\"eventId\":", None)
            .unwrap_err()
            .contains("invalid JSON"));
        assert!(decode(b"\x0a\xff", None)
            .unwrap_err()
            .contains("invalid protobuf"));
        assert_eq!(decode(b"", None).unwrap_err(), "empty payload");
        assert!(decode(b"{\"eventId\":\"\xff\"}", Some(JSON))
            .unwrap_err()
            .contains("not UTF-8"));
        let ts = br#"{"eventId":"e1","dossierId":"D","occurredAt":"2026-10-05T10:00:00","resultReady":{}}"#;
        assert!(
            decode(ts, Some(JSON)).is_err(),
            "a timestamp without offset"
        );
    }
}
