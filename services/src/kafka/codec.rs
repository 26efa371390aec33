//! Record formats in Kafka mode: input payloads (protobuf or proto3 JSON, told apart by
//! the `content-type` header or the first byte), raised events out, and header names.

use dunghan_proto::v1::{DossierEvent, SlaEvent};
use prost::Message;
use rdkafka::message::{Header, OwnedHeaders};

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

/// Whether an input payload is JSON: a `content-type` header decides; without one, a
/// payload starting with `{` (after blanks) is JSON — a `DossierEvent` in protobuf never
/// starts with that byte (field 15, wire type 3 is not in the schema).
pub(crate) fn is_json(payload: &[u8], content_type: Option<&str>) -> bool {
    match content_type {
        Some(JSON) => true,
        Some(PROTOBUF) => false,
        Some(t) if t.contains("json") => true,
        Some(t) if t.contains("protobuf") || t.contains("proto") => false,
        _ => payload
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{'),
    }
}

/// Decodes an input payload, protobuf or JSON (see [`is_json`]).
pub(crate) fn decode(payload: &[u8], content_type: Option<&str>) -> Result<DossierEvent, String> {
    if payload.is_empty() {
        return Err("empty payload".into());
    }
    if is_json(payload, content_type) {
        serde_json::from_slice(payload).map_err(|e| format!("invalid JSON event: {e}"))
    } else {
        DossierEvent::decode(payload).map_err(|e| format!("invalid protobuf event: {e}"))
    }
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

/// Encodes a raised event as configured (`json` or protobuf).
pub(crate) fn encode(event: &SlaEvent, json: bool) -> Vec<u8> {
    if json {
        serde_json::to_vec(event).unwrap_or_default()
    } else {
        event.encode_to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_decode_to_the_same_event_and_garbage_says_why() {
        let json = br#" {"eventId":"e1","dossierId":"D","occurredAt":"2026-10-05T10:00:00+07:00","resultReady":{}}"#;
        let a = decode(json, None).unwrap();
        let b = decode(&a.encode_to_vec(), None).unwrap();
        assert_eq!(a, b);
        assert_eq!(decode(&a.encode_to_vec(), Some(PROTOBUF)).unwrap(), a);
        assert!(decode(b"{\"eventId\":", None)
            .unwrap_err()
            .contains("invalid JSON"));
        assert!(decode(b"\x0a\xff", None)
            .unwrap_err()
            .contains("invalid protobuf"));
        assert_eq!(decode(b"", None).unwrap_err(), "empty payload");
        let ts = br#"{"eventId":"e1","dossierId":"D","occurredAt":"2026-10-05T10:00:00","resultReady":{}}"#;
        assert!(
            decode(ts, Some(JSON)).is_err(),
            "a timestamp without offset"
        );
    }
}
