//! The fast JSON path against pbjson's parser: the same event whenever it decodes one,
//! on events of every kind, their byte mutants and timestamps of every shape.

use crate::pbjson_types::Timestamp;
use crate::v1::{self, dossier_event::Payload, DossierEvent};
use chrono::DateTime;

use super::{decode, special, timestamp};

/// SplitMix64: seeded inputs, the same every run.
struct Rng(u64);

impl Rng {
    fn stream(seed: u64, stream: u64) -> Rng {
        Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.below(1 << 53) as f64) < p * (1u64 << 53) as f64
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// What pbjson's parser makes of `text`.
fn full(text: &str) -> Option<DossierEvent> {
    serde_json::from_str(text).ok()
}

/// Asserts the fast path decodes `text` as pbjson does, or leaves it to pbjson.
fn agrees(text: &str) -> Option<DossierEvent> {
    let fast = decode(text);
    if let Some(event) = &fast {
        assert_eq!(Some(event), full(text).as_ref(), "{text:?}");
    }
    fast
}

/// A short string, sometimes with characters JSON must escape.
fn string(rng: &mut Rng, escapes: bool) -> String {
    let plain = [
        "a", "Z", "0", "-", ".", " ", "đ", "ừ", "hồ sơ", "/", "{", "}", ":", ",",
    ];
    let escaped = ["\"", "\\", "\n", "\u{1}", "\t"];
    (0..rng.below(12))
        .map(|_| {
            if escapes && rng.chance(0.1) {
                *rng.pick(&escaped)
            } else {
                *rng.pick(&plain)
            }
        })
        .collect()
}

fn time(rng: &mut Rng) -> Timestamp {
    Timestamp {
        seconds: 1_600_000_000 + rng.below(400_000_000) as i64,
        nanos: if rng.chance(0.5) {
            0
        } else {
            rng.below(1_000_000_000) as i32
        },
    }
}

/// An event of payload kind `kind` (0..14; 14 = none), every field set at random.
fn event(rng: &mut Rng, kind: u64, escapes: bool) -> DossierEvent {
    let mut s = || string(rng, escapes);
    let (a, b, c) = (s(), s(), s());
    let payload = match kind {
        0 => Payload::Received(v1::DossierReceived {
            procedure_code: a,
            agency_id: b,
            office_id: c,
            channel: rng.below(4) as i32,
        }),
        1 => Payload::StepStarted(v1::StepStarted {
            step_id: a,
            department_id: b,
            allotment: None,
        }),
        2 => Payload::StepCompleted(v1::StepCompleted { step_id: a }),
        3 => Payload::SupplementRequested(v1::SupplementRequested { reason: a }),
        4 => Payload::SupplementReceived(v1::SupplementReceived {}),
        5 => Payload::FeesRequested(v1::FeesRequested {}),
        6 => Payload::FeesPaid(v1::FeesPaid {}),
        7 => Payload::ProcessingStopped(v1::ProcessingStopped { reason: a }),
        8 => Payload::ApologyIssued(v1::ApologyIssued {
            department_id: a,
            new_appointment: rng.chance(0.8).then(|| time(rng)),
            reason: b,
        }),
        9 => Payload::ResultReady(v1::ResultReady {}),
        10 => Payload::ResultReturned(v1::ResultReturned {}),
        11 => Payload::Withdrawn(v1::Withdrawn { reason: a }),
        12 => Payload::Refused(v1::Refused { reason: a }),
        _ => Payload::CitizenRated(v1::CitizenRated {
            official_id: a,
            department_id: b,
            level: rng.below(5) as i32,
        }),
    };
    DossierEvent {
        event_id: string(rng, escapes),
        dossier_id: string(rng, escapes),
        occurred_at: rng.chance(0.95).then(|| time(rng)),
        payload: (kind < 14).then_some(payload),
    }
}

#[test]
fn events_of_every_kind_decode_as_pbjson_decodes_them() {
    let mut rng = Rng::stream(7, 1);
    let mut fast = 0;
    for n in 0..30_000 {
        let escapes = n % 2 == 1;
        let e = event(&mut rng, n % 15, escapes);
        let text = serde_json::to_string(&e).unwrap();
        let decoded = agrees(&text);
        if !escapes {
            // What publishers write is the fast path's to decode, not to hand on.
            assert_eq!(decoded.as_ref(), Some(&e), "{text}");
            fast += 1;
        }
        // Blanks between the tokens change nothing.
        let spaced = serde_json::to_string_pretty(&e).unwrap();
        assert!(escapes || agrees(&spaced).is_some(), "{spaced}");
    }
    assert_eq!(fast, 15_000);
}

#[test]
fn other_forms_are_left_to_pbjson() {
    // Valid proto3 JSON that the fast path does not read: pbjson decides.
    let forms = [
        r#"{"event_id":"e","dossierId":"D","occurredAt":"2026-10-05T10:00:00+07:00","resultReady":{}}"#,
        r#"{"eventId":"e\u0041","dossierId":"D","resultReady":{}}"#,
        r#"{"eventId":"e","received":{"channel":2}}"#,
        r#"{"eventId":"e","occurredAt":"2026-10-05t10:00:00z"}"#,
        r#"{"eventId":"e","occurredAt":"2026-10-05T10:00:00.1234567891Z"}"#,
        r#"{"eventId":"e","resultReady":null}"#,
        r#"{"eventId":"e","stepStarted":{"allotment":{"workingDays":2}}}"#,
    ];
    for text in forms {
        assert!(full(text).is_some(), "pbjson reads {text}");
        assert_eq!(decode(text), None, "{text}");
    }
    let e = DossierEvent {
        payload: Some(Payload::StepStarted(v1::StepStarted {
            allotment: Some(v1::Duration {
                amount: Some(v1::duration::Amount::WorkingDays(2.0)),
            }),
            ..Default::default()
        })),
        ..Default::default()
    };
    assert_eq!(decode(&serde_json::to_string(&e).unwrap()), None);
    // Invalid input the fast path must not accept: pbjson words the error.
    let invalid = [
        r#"{"eventId":"a","eventId":"b"}"#,
        r#"{"resultReady":{},"resultReturned":{}}"#,
        r#"{"eventId":"e","received":{"channel":"CHANNEL_FAX"}}"#,
        r#"{"eventId":"e","occurredAt":"2026-10-05T10:00:00"}"#,
        r#"{"eventId":"e","occurredAt":"2026-02-30T10:00:00Z"}"#,
        r#"{"eventId":"e","nothing":1}"#,
        r#"{"eventId":"e"} x"#,
        r#"{"eventId":"e",}"#,
        "{\"eventId\":\"a\u{1}\"}",
    ];
    for text in invalid {
        assert_eq!(full(text), None, "pbjson refuses {text}");
        assert_eq!(decode(text), None, "{text}");
    }
}

#[test]
fn byte_mutants_are_decoded_as_pbjson_does_or_left_to_it() {
    let mut rng = Rng::stream(7, 2);
    let tokens: &[&[u8]] = &[
        b"\"",
        b"\\",
        b",",
        b":",
        b"{",
        b"}",
        b" ",
        b"0",
        b"9",
        b"Z",
        b"T",
        b"+",
        b"-",
        b".",
        b"\"x\":",
        b"null",
        b"\xc3\xa9",
        b"\n",
        b"\t",
        b"\x01",
    ];
    let mut decoded = 0;
    for n in 0..200_000 {
        let e = event(&mut rng, n % 15, false);
        let mut bytes = serde_json::to_vec(&e).unwrap();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(bytes.len() as u64 + 1) as usize;
            match rng.below(3) {
                0 if at < bytes.len() => {
                    bytes.remove(at);
                }
                1 => bytes.truncate(at),
                _ => {
                    let token = rng.pick(tokens);
                    bytes.splice(at..at, token.iter().copied());
                }
            }
        }
        if let Ok(text) = std::str::from_utf8(&bytes) {
            decoded += usize::from(agrees(text).is_some());
        }
    }
    // Some mutants still are events (a string cut or lengthened): the fast path read them.
    assert!(decoded > 5_000, "{decoded}");
}

#[test]
fn timestamps_are_read_as_chrono_reads_rfc3339() {
    let mut rng = Rng::stream(7, 3);
    let pick = |rng: &mut Rng, lo: u64, hi: u64| lo + rng.below(hi - lo + 1);
    let mut read = 0;
    for _ in 0..200_000 {
        let fraction = match rng.below(4) {
            0 => String::new(),
            _ => format!(
                ".{}",
                "123456789012".get(..1 + rng.below(11) as usize).unwrap()
            ),
        };
        let offset = match rng.below(5) {
            0 => "Z".to_string(),
            1 => String::new(),
            2 => format!("-{:02}:{:02}", pick(&mut rng, 0, 25), pick(&mut rng, 0, 61)),
            _ => format!("+{:02}:{:02}", pick(&mut rng, 0, 25), pick(&mut rng, 0, 61)),
        };
        let text = format!(
            "{:04}-{:02}-{:02}{}{:02}:{:02}:{:02}{fraction}{offset}",
            pick(&mut rng, 0, 10_000) % 10_000,
            pick(&mut rng, 0, 13),
            pick(&mut rng, 0, 32),
            *rng.pick(&["T", "T", "T", "t", " "]),
            pick(&mut rng, 0, 24),
            pick(&mut rng, 0, 60),
            pick(&mut rng, 0, 60),
        );
        let chrono = DateTime::parse_from_rfc3339(&text)
            .ok()
            .map(|d| Timestamp::from(d.to_utc()));
        if let Some(t) = timestamp(&text) {
            assert_eq!(Some(t), chrono, "{text}");
            read += 1;
        }
    }
    assert!(read > 50_000, "{read}");
    assert_eq!(
        timestamp("2026-10-05T10:00:00.5+07:00"),
        Some(Timestamp {
            seconds: 1_791_169_200,
            nanos: 500_000_000
        })
    );
}

#[test]
fn special_bytes_are_found_where_a_byte_loop_finds_them() {
    let mut rng = Rng::stream(7, 4);
    let bytes = [
        b'a', b'z', b'"', b'\\', 0, 0x1f, 0x20, 0x21, 0x7f, 0x80, 0xc3, 0xff, b'!', b']',
    ];
    for _ in 0..100_000 {
        let text: Vec<u8> = (0..rng.below(40)).map(|_| *rng.pick(&bytes)).collect();
        let naive = text
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20);
        assert_eq!(special(&text), naive, "{text:?}");
    }
}
