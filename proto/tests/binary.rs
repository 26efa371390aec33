//! The protobuf binary form of dunghan.v1 and the embedded descriptor set.

use dunghan_proto::pbjson_types::{FileDescriptorSet, Timestamp};
use dunghan_proto::v1::{
    dossier_event::Payload, duration::Amount, ApologyIssued, Channel, DossierEvent,
    DossierReceived, Duration, SlaEvent, StepStarted,
};
use prost::Message;

fn ts(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

#[test]
fn dossier_event_binary_round_trip() {
    let events = [
        DossierEvent {
            event_id: "e1".into(),
            dossier_id: "D-1".into(),
            occurred_at: ts(1_791_169_200),
            payload: Some(Payload::Received(DossierReceived {
                procedure_code: "2.000488".into(),
                agency_id: "so-vhtt".into(),
                office_id: "ttphcc".into(),
                channel: Channel::Postal.into(),
            })),
        },
        DossierEvent {
            event_id: "e2".into(),
            dossier_id: "D-1".into(),
            occurred_at: Some(Timestamp {
                seconds: 1_791_172_800,
                nanos: 123_000_000,
            }),
            payload: Some(Payload::StepStarted(StepStarted {
                step_id: "thẩm-định".into(),
                department_id: "p-vh".into(),
                allotment: Some(Duration {
                    amount: Some(Amount::WorkingHours(12.5)),
                }),
            })),
        },
        DossierEvent {
            event_id: "e3".into(),
            dossier_id: "D-1".into(),
            occurred_at: ts(1_791_800_000),
            payload: Some(Payload::ApologyIssued(ApologyIssued {
                department_id: "p-vh".into(),
                new_appointment: ts(1_792_000_000),
                reason: "chờ ý kiến liên ngành".into(),
            })),
        },
        // No payload at all still encodes; the engine rejects it, not the codec.
        DossierEvent::default(),
    ];
    for event in events {
        let bytes = event.encode_to_vec();
        let back = DossierEvent::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(back, event);
    }
}

#[test]
fn binary_and_json_agree() {
    let line = r#"{"eventId":"e1","dossierId":"D-1","occurredAt":"2026-10-05T10:00:00+07:00","received":{"procedureCode":"2.000488","agencyId":"so-vhtt","channel":"CHANNEL_COUNTER"}}"#;
    let from_json: DossierEvent = serde_json::from_str(line).unwrap();
    let from_binary = DossierEvent::decode(from_json.encode_to_vec().as_slice()).unwrap();
    assert_eq!(from_binary, from_json);
    let again: DossierEvent =
        serde_json::from_str(&serde_json::to_string(&from_binary).unwrap()).unwrap();
    assert_eq!(again, from_json);
}

#[test]
fn garbage_bytes_are_an_error() {
    // A JSON line fed to the binary decoder (the header said protobuf) fails
    // cleanly instead of panicking.
    let json = br#"{"eventId":"e1"}"#;
    assert!(DossierEvent::decode(json.as_slice()).is_err());
    assert!(SlaEvent::decode([0xff_u8, 0xff, 0xff].as_slice()).is_err());
}

#[test]
fn file_descriptor_set_describes_the_schema() {
    let set = FileDescriptorSet::decode(dunghan_proto::FILE_DESCRIPTOR_SET).expect("decodes");
    let names: Vec<&str> = set.file.iter().map(|f| f.name()).collect();
    assert!(names.contains(&"dunghan/v1/events.proto"), "{names:?}");
    // Imports are included, so reflection clients can resolve every type.
    assert!(
        names.contains(&"google/protobuf/timestamp.proto"),
        "{names:?}"
    );
    assert!(
        names.contains(&"google/protobuf/duration.proto"),
        "{names:?}"
    );
    let events = set
        .file
        .iter()
        .find(|f| f.name() == "dunghan/v1/events.proto")
        .unwrap();
    assert_eq!(events.package(), "dunghan.v1");
    let messages: Vec<&str> = events.message_type.iter().map(|m| m.name()).collect();
    for wanted in ["DossierEvent", "SlaEvent", "Duration", "CitizenRated"] {
        assert!(
            messages.contains(&wanted),
            "{wanted} missing from {messages:?}"
        );
    }
}
