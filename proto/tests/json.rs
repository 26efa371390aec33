//! The proto3 JSON mapping of dunghan.v1 as agencies send it (event files,
//! JSON payloads on Kafka) and as dunghan writes SLA events.

use chrono::{DateTime, TimeZone, Utc};
use dunghan_proto::pbjson_types::{Duration as WorkingTime, Timestamp};
use dunghan_proto::v1::{
    dossier_event::Payload, duration::Amount, Channel, DossierEvent, Outcome, SatisfactionLevel,
    SlaEvent, SlaEventKind,
};

/// The example line of the event-file format (issue 3, item 1).
const RECEIVED_LINE: &str = r#"{"eventId":"e1","dossierId":"D-1","occurredAt":"2026-10-05T10:00:00+07:00","received":{"procedureCode":"2.000488","agencyId":"so-vhtt","channel":"CHANNEL_COUNTER"}}"#;

fn parse(line: &str) -> Result<DossierEvent, serde_json::Error> {
    serde_json::from_str(line)
}

fn instant(ts: Option<Timestamp>) -> DateTime<Utc> {
    DateTime::<Utc>::try_from(ts.expect("timestamp set")).expect("timestamp in range")
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

#[test]
fn example_received_line_parses_with_every_field() {
    let event = parse(RECEIVED_LINE).expect("example line parses");
    assert_eq!(event.event_id, "e1");
    assert_eq!(event.dossier_id, "D-1");
    let Some(Payload::Received(received)) = &event.payload else {
        panic!("payload is not `received`: {:?}", event.payload);
    };
    assert_eq!(received.procedure_code, "2.000488");
    assert_eq!(received.agency_id, "so-vhtt");
    assert_eq!(received.office_id, "", "absent string is the empty default");
    assert_eq!(received.channel(), Channel::Counter);
}

#[test]
fn offset_timestamp_is_the_right_instant() {
    let event = parse(RECEIVED_LINE).unwrap();
    // 10:00 in Hà Nội (UTC+7) is 03:00 UTC; the offset itself is not kept.
    assert_eq!(instant(event.occurred_at), utc(2026, 10, 5, 3, 0));
    let ts = event.occurred_at.unwrap();
    assert_eq!(ts.seconds, utc(2026, 10, 5, 3, 0).timestamp());
    assert_eq!(ts.nanos, 0);
}

#[test]
fn timestamps_accept_z_and_fractions() {
    let line = r#"{"eventId":"e2","dossierId":"D-1","occurredAt":"2026-10-05T03:00:00.250Z","resultReady":{}}"#;
    let ts = parse(line).unwrap().occurred_at.unwrap();
    assert_eq!(ts.seconds, utc(2026, 10, 5, 3, 0).timestamp());
    assert_eq!(ts.nanos, 250_000_000);
}

#[test]
fn timestamp_without_offset_is_an_error() {
    // RFC 3339 requires an offset; a local time alone is ambiguous.
    let line =
        r#"{"eventId":"e1","dossierId":"D-1","occurredAt":"2026-10-05T10:00:00","resultReady":{}}"#;
    let err = parse(line).unwrap_err();
    assert!(err.is_data(), "{err}");
    for bad in ["2026-10-05", "05/10/2026 10:00", "1791169200"] {
        let line = format!(r#"{{"eventId":"e1","occurredAt":"{bad}"}}"#);
        assert!(parse(&line).is_err(), "{bad} should not parse");
    }
    // A number is not a timestamp either.
    assert!(parse(r#"{"occurredAt":1791169200}"#).is_err());
}

#[test]
fn snake_case_field_names_are_accepted_too() {
    // The mapping requires parsers to accept the proto field names as well.
    let line = r#"{"event_id":"e1","dossier_id":"D-1","occurred_at":"2026-10-05T10:00:00+07:00","received":{"procedure_code":"2.000488","agency_id":"so-vhtt","channel":"CHANNEL_COUNTER"}}"#;
    assert_eq!(parse(line).unwrap(), parse(RECEIVED_LINE).unwrap());
}

#[test]
fn every_payload_kind_parses() {
    let cases = [
        (
            r#"{"stepStarted":{"stepId":"s1","departmentId":"p-vh","allotment":{"workingDays":2.5}}}"#,
            "step_started",
        ),
        (r#"{"stepCompleted":{"stepId":"s1"}}"#, "step_completed"),
        (
            r#"{"supplementRequested":{"reason":"thiếu bản sao CCCD"}}"#,
            "supplement_requested",
        ),
        (r#"{"supplementReceived":{}}"#, "supplement_received"),
        (r#"{"feesRequested":{}}"#, "fees_requested"),
        (r#"{"feesPaid":{}}"#, "fees_paid"),
        (
            r#"{"processingStopped":{"reason":"x"}}"#,
            "processing_stopped",
        ),
        (
            r#"{"apologyIssued":{"departmentId":"p-vh","newAppointment":"2026-10-16T16:00:00+07:00","reason":"x"}}"#,
            "apology_issued",
        ),
        (r#"{"resultReady":{}}"#, "result_ready"),
        (r#"{"resultReturned":{}}"#, "result_returned"),
        (r#"{"withdrawn":{"reason":"x"}}"#, "withdrawn"),
        (r#"{"refused":{"reason":"x"}}"#, "refused"),
        (
            r#"{"citizenRated":{"officialId":"cb-7","departmentId":"p-vh","level":"SATISFACTION_LEVEL_VERY_SATISFIED"}}"#,
            "citizen_rated",
        ),
    ];
    for (line, name) in cases {
        let event = parse(line).unwrap_or_else(|e| panic!("{name}: {e}"));
        let payload = event
            .payload
            .unwrap_or_else(|| panic!("{name}: no payload"));
        match (name, payload) {
            ("step_started", Payload::StepStarted(s)) => {
                assert_eq!(s.step_id, "s1");
                assert_eq!(s.department_id, "p-vh");
                let amount = s.allotment.and_then(|a| a.amount);
                assert_eq!(amount, Some(Amount::WorkingDays(2.5)));
            }
            ("apology_issued", Payload::ApologyIssued(a)) => {
                assert_eq!(instant(a.new_appointment), utc(2026, 10, 16, 9, 0));
            }
            ("citizen_rated", Payload::CitizenRated(r)) => {
                assert_eq!(r.level(), SatisfactionLevel::VerySatisfied);
            }
            ("supplement_requested", Payload::SupplementRequested(s)) => {
                assert_eq!(s.reason, "thiếu bản sao CCCD");
            }
            (
                "step_completed"
                | "supplement_received"
                | "fees_requested"
                | "fees_paid"
                | "processing_stopped"
                | "result_ready"
                | "result_returned"
                | "withdrawn"
                | "refused",
                _,
            ) => {}
            (name, payload) => panic!("{name} parsed as {payload:?}"),
        }
    }
}

#[test]
fn allotment_units_round_trip() {
    for amount in [
        Amount::WorkingDays(0.5),
        Amount::WorkingHours(4.0),
        Amount::CalendarDays(15),
        Amount::Months(2),
    ] {
        let d = dunghan_proto::v1::Duration {
            amount: Some(amount),
        };
        let json = serde_json::to_string(&d).unwrap();
        let back: dunghan_proto::v1::Duration = serde_json::from_str(&json).unwrap();
        assert_eq!(back.amount, Some(amount), "{json}");
    }
    let json = serde_json::to_string(&dunghan_proto::v1::Duration {
        amount: Some(Amount::CalendarDays(15)),
    })
    .unwrap();
    assert_eq!(json, r#"{"calendarDays":15}"#);
}

fn sample_sla_event() -> SlaEvent {
    SlaEvent {
        id: "D-1/ESCALATION/s1/1".into(),
        dossier_id: "D-1".into(),
        kind: SlaEventKind::Escalation.into(),
        raised_at: Some(utc(2026, 10, 12, 3, 0).into()),
        agency_id: "so-vhtt".into(),
        department_id: "p-vh".into(),
        step_id: "s1".into(),
        level: 1,
        deadline: Some(utc(2026, 10, 12, 3, 0).into()),
        outcome: Outcome::Late.into(),
        lateness: Some(WorkingTime {
            seconds: 90 * 60,
            nanos: 0,
        }),
        reason: "bước thẩm định quá hạn".into(),
        procedure_code: "2.000488".into(),
        field: "Văn hóa".into(),
        channel: Channel::Online.into(),
        event_id: "e7".into(),
        statutory_deadline: Some(utc(2026, 10, 19, 3, 0).into()),
        reject_reason: String::new(),
    }
}

#[test]
fn sla_event_json_round_trip() {
    let event = sample_sla_event();
    let json = serde_json::to_string(&event).unwrap();
    let back: SlaEvent = serde_json::from_str(&json).unwrap();
    assert_eq!(back, event, "{json}");

    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["kind"], "SLA_EVENT_KIND_ESCALATION");
    assert_eq!(value["outcome"], "OUTCOME_LATE");
    assert_eq!(value["channel"], "CHANNEL_ONLINE");
    assert_eq!(value["level"], 1);
    assert_eq!(value["lateness"], "5400s");
    assert_eq!(value["dossierId"], "D-1");
    assert_eq!(value["statutoryDeadline"], "2026-10-19T03:00:00+00:00");
    // Timestamps are written in UTC with a "+00:00" offset (not "Z").
    assert_eq!(value["raisedAt"], "2026-10-12T03:00:00+00:00");
}

#[test]
fn default_fields_are_omitted() {
    let event = SlaEvent {
        id: "x".into(),
        ..SlaEvent::default()
    };
    assert_eq!(serde_json::to_string(&event).unwrap(), r#"{"id":"x"}"#);
    let back: SlaEvent = serde_json::from_str(r#"{"id":"x"}"#).unwrap();
    assert_eq!(back, event);
}

#[test]
fn enum_names_in_json_are_the_full_proto_names() {
    let kinds = [
        (SlaEventKind::DeadlineComputed, "DEADLINE_COMPUTED"),
        (SlaEventKind::Warning, "WARNING"),
        (SlaEventKind::Escalation, "ESCALATION"),
        (SlaEventKind::ApologyRequired, "APOLOGY_REQUIRED"),
        (SlaEventKind::ApologyOverdue, "APOLOGY_OVERDUE"),
        (SlaEventKind::EarlyResult, "EARLY_RESULT"),
        (SlaEventKind::DeadlineShifted, "DEADLINE_SHIFTED"),
        (SlaEventKind::Outcome, "OUTCOME"),
        (SlaEventKind::Rejected, "REJECTED"),
    ];
    for (kind, suffix) in kinds {
        let json = serde_json::to_string(&kind).unwrap();
        assert_eq!(json, format!("\"SLA_EVENT_KIND_{suffix}\""));
        assert_eq!(serde_json::from_str::<SlaEventKind>(&json).unwrap(), kind);
    }
    assert_eq!(
        serde_json::to_string(&SlaEventKind::Warning).unwrap(),
        r#""SLA_EVENT_KIND_WARNING""#
    );
    for (outcome, name) in [
        (Outcome::Early, "OUTCOME_EARLY"),
        (Outcome::OnTime, "OUTCOME_ON_TIME"),
        (Outcome::Late, "OUTCOME_LATE"),
    ] {
        assert_eq!(
            serde_json::to_string(&outcome).unwrap(),
            format!("\"{name}\"")
        );
    }
    for (channel, name) in [
        (Channel::Counter, "CHANNEL_COUNTER"),
        (Channel::Online, "CHANNEL_ONLINE"),
        (Channel::Postal, "CHANNEL_POSTAL"),
    ] {
        assert_eq!(
            serde_json::to_string(&channel).unwrap(),
            format!("\"{name}\"")
        );
    }
    assert_eq!(
        serde_json::to_string(&SatisfactionLevel::Dissatisfied).unwrap(),
        r#""SATISFACTION_LEVEL_DISSATISFIED""#
    );
}

#[test]
fn enum_by_number_is_accepted() {
    // The mapping lets parsers take an enum's number as well as its name.
    let event = parse(r#"{"received":{"channel":2}}"#).unwrap();
    let Some(Payload::Received(received)) = event.payload else {
        panic!("not received");
    };
    assert_eq!(received.channel(), Channel::Online);
}

#[test]
fn unknown_field_is_an_error() {
    let line = r#"{"eventId":"e1","dossierId":"D-1","colour":"red","resultReady":{}}"#;
    let err = parse(line).unwrap_err();
    assert!(err.to_string().contains("colour"), "{err}");
    // Also inside a payload.
    let line = r#"{"eventId":"e1","received":{"procedureCode":"2.000488","agency":"so-vhtt"}}"#;
    assert!(parse(line).unwrap_err().to_string().contains("agency"));
}

#[test]
fn bad_enum_name_is_an_error() {
    for channel in [
        r#""COUNTER""#,
        r#""CHANNEL_FAX""#,
        r#""channel_counter""#,
        "99",
    ] {
        let line = format!(r#"{{"eventId":"e1","received":{{"channel":{channel}}}}}"#);
        assert!(parse(&line).is_err(), "channel {channel} should not parse");
    }
    let err = serde_json::from_str::<SlaEvent>(r#"{"kind":"SLA_EVENT_KIND_PANIC"}"#).unwrap_err();
    assert!(err.to_string().contains("SLA_EVENT_KIND_PANIC"), "{err}");
}

#[test]
fn malformed_json_is_an_error() {
    let lines = [
        "",
        "not json",
        r#"{"eventId":"e1","#,
        r#"{"eventId":"e1"}}"#,
        r#"["eventId","e1"]"#,
        r#"{"eventId":42}"#,
        r#"{"received":"2.000488"}"#,
        r#"{"stepStarted":{"allotment":{"workingDays":"two"}}}"#,
        r#"{"stepStarted":{"allotment":{"calendarDays":-1}}}"#,
    ];
    for line in lines {
        assert!(parse(line).is_err(), "{line:?} should not parse");
    }
}

#[test]
fn two_payloads_are_an_error() {
    let line = r#"{"eventId":"e1","resultReady":{},"withdrawn":{"reason":"x"}}"#;
    assert!(parse(line).is_err());
    let line = r#"{"stepStarted":{"allotment":{"workingDays":1,"months":1}}}"#;
    assert!(parse(line).is_err());
}
