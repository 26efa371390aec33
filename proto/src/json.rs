//! A fast path for proto3-JSON `DossierEvent`s in the form publishers write: lowerCamelCase
//! names, strings without escapes, enums by name, RFC 3339 timestamps with `T` and an
//! offset, each member once. Anything else (or anything invalid) is `None`, and pbjson's
//! full parser decides and words the error: this path only ever agrees with it.

use crate::pbjson_types::Timestamp;
use crate::v1::{self, dossier_event::Payload, DossierEvent};

/// Decodes a proto3-JSON `DossierEvent`: the common form by hand, anything else (and every
/// error) by pbjson through serde_json, so the result is always pbjson's.
pub fn from_str(text: &str) -> serde_json::Result<DossierEvent> {
    decode(text).map_or_else(|| serde_json::from_str(text), Ok)
}

/// Decodes `text` if it is in the common form (see the module doc), else `None`: then
/// `serde_json::from_str::<DossierEvent>` decides (and says what is wrong, if anything).
///
/// ```
/// let line = r#"{"eventId":"e1","dossierId":"D-1","occurredAt":"2026-10-05T10:00:00+07:00","resultReady":{}}"#;
/// let fast = dunghan_proto::json::decode(line).unwrap();
/// assert_eq!(fast, serde_json::from_str(line).unwrap());
/// assert_eq!(dunghan_proto::json::decode(&line.replace("eventId", "event_id")), None);
/// ```
pub fn decode(text: &str) -> Option<DossierEvent> {
    let mut r = Reader { text, at: 0 };
    let mut event = DossierEvent::default();
    let mut seen = Seen::default();
    r.object(|r, key| match key {
        "eventId" => r.string(&mut seen, 0, &mut event.event_id),
        "dossierId" => r.string(&mut seen, 1, &mut event.dossier_id),
        "occurredAt" => r.time(&mut seen, 2, &mut event.occurred_at),
        _ => {
            seen.once(3)?; // one payload member: pbjson rejects a second
            event.payload = Some(r.payload(key)?);
            Some(())
        }
    })?;
    r.blanks();
    (r.at == text.len()).then_some(event)
}

/// Which members of an object were read (by bit): pbjson rejects a repeated member.
#[derive(Default)]
struct Seen(u8);

impl Seen {
    fn once(&mut self, bit: u8) -> Option<()> {
        let mask = 1 << bit;
        (self.0 & mask == 0).then(|| self.0 |= mask)
    }
}

/// A cursor over the text. Its per-token helpers are always inlined: as calls, saving and
/// restoring registers was a tenth of the decode.
struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn blanks(&mut self) {
        let bytes = self.text.as_bytes();
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after any blanks (which compact JSON, the usual, does not have).
    #[inline(always)]
    fn peek(&mut self) -> Option<u8> {
        let byte = *self.text.as_bytes().get(self.at)?;
        if !matches!(byte, b' ' | b'\n' | b'\t' | b'\r') {
            return Some(byte);
        }
        self.blanks();
        self.text.as_bytes().get(self.at).copied()
    }

    /// Skips blanks and then `byte`, or `None`.
    #[inline(always)]
    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// A string without escapes or control characters.
    #[inline(always)]
    fn str(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let (start, bytes) = (self.at, self.text.as_bytes());
        let end = start + special(&bytes[start..])?;
        if bytes[end] != b'"' {
            return None; // an escape or a control character (even a blank one)
        }
        self.at = end + 1;
        // Both ends are ASCII quotes, so the slice is on character boundaries.
        self.text.get(start..end)
    }

    /// A string member `bit` of an object, read once into `into`.
    fn string(&mut self, seen: &mut Seen, bit: u8, into: &mut String) -> Option<()> {
        seen.once(bit)?;
        *into = self.str()?.to_owned();
        Some(())
    }

    /// An object: `member(reader, key)` reads each member's value.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.expect(b'{')?;
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.str()?;
            self.expect(b':')?;
            member(self, key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An enum member `bit` of an object, by name (`by_name`: prost's `from_str_name`).
    fn enumeration<E: Into<i32>>(
        &mut self,
        seen: &mut Seen,
        bit: u8,
        into: &mut i32,
        by_name: fn(&str) -> Option<E>,
    ) -> Option<()> {
        seen.once(bit)?;
        *into = by_name(self.str()?)?.into();
        Some(())
    }

    /// `payload`, if the object read is empty.
    fn empty(&mut self, payload: Payload) -> Option<Payload> {
        self.object(|_, _| None).map(|()| payload)
    }

    /// An RFC 3339 timestamp member `bit` of an object, read once into `into`.
    fn time(&mut self, seen: &mut Seen, bit: u8, into: &mut Option<Timestamp>) -> Option<()> {
        seen.once(bit)?;
        *into = Some(timestamp(self.str()?)?);
        Some(())
    }

    /// The payload member named `key`.
    fn payload(&mut self, key: &str) -> Option<Payload> {
        Some(match key {
            "received" => {
                let (mut m, mut seen) = (v1::DossierReceived::default(), Seen::default());
                self.object(|r, key| match key {
                    "procedureCode" => r.string(&mut seen, 0, &mut m.procedure_code),
                    "agencyId" => r.string(&mut seen, 1, &mut m.agency_id),
                    "officeId" => r.string(&mut seen, 2, &mut m.office_id),
                    "channel" => {
                        r.enumeration(&mut seen, 3, &mut m.channel, v1::Channel::from_str_name)
                    }
                    _ => None,
                })?;
                Payload::Received(m)
            }
            "stepStarted" => {
                // An allotment (a `Duration`) is left to the full parser.
                let (mut m, mut seen) = (v1::StepStarted::default(), Seen::default());
                self.object(|r, key| match key {
                    "stepId" => r.string(&mut seen, 0, &mut m.step_id),
                    "departmentId" => r.string(&mut seen, 1, &mut m.department_id),
                    _ => None,
                })?;
                Payload::StepStarted(m)
            }
            "stepCompleted" => {
                let (mut m, mut seen) = (v1::StepCompleted::default(), Seen::default());
                self.object(|r, key| match key {
                    "stepId" => r.string(&mut seen, 0, &mut m.step_id),
                    _ => None,
                })?;
                Payload::StepCompleted(m)
            }
            "supplementRequested" => Payload::SupplementRequested(v1::SupplementRequested {
                reason: self.reason()?,
            }),
            "processingStopped" => Payload::ProcessingStopped(v1::ProcessingStopped {
                reason: self.reason()?,
            }),
            "withdrawn" => Payload::Withdrawn(v1::Withdrawn {
                reason: self.reason()?,
            }),
            "refused" => Payload::Refused(v1::Refused {
                reason: self.reason()?,
            }),
            "apologyIssued" => {
                let (mut m, mut seen) = (v1::ApologyIssued::default(), Seen::default());
                self.object(|r, key| match key {
                    "departmentId" => r.string(&mut seen, 0, &mut m.department_id),
                    "newAppointment" => r.time(&mut seen, 1, &mut m.new_appointment),
                    "reason" => r.string(&mut seen, 2, &mut m.reason),
                    _ => None,
                })?;
                Payload::ApologyIssued(m)
            }
            "citizenRated" => {
                let (mut m, mut seen) = (v1::CitizenRated::default(), Seen::default());
                self.object(|r, key| match key {
                    "officialId" => r.string(&mut seen, 0, &mut m.official_id),
                    "departmentId" => r.string(&mut seen, 1, &mut m.department_id),
                    "level" => r.enumeration(
                        &mut seen,
                        2,
                        &mut m.level,
                        v1::SatisfactionLevel::from_str_name,
                    ),
                    _ => None,
                })?;
                Payload::CitizenRated(m)
            }
            "supplementReceived" => {
                self.empty(Payload::SupplementReceived(v1::SupplementReceived {}))?
            }
            "feesRequested" => self.empty(Payload::FeesRequested(v1::FeesRequested {}))?,
            "feesPaid" => self.empty(Payload::FeesPaid(v1::FeesPaid {}))?,
            "resultReady" => self.empty(Payload::ResultReady(v1::ResultReady {}))?,
            "resultReturned" => self.empty(Payload::ResultReturned(v1::ResultReturned {}))?,
            _ => return None,
        })
    }

    /// An object with at most a `reason` string.
    fn reason(&mut self) -> Option<String> {
        let (mut reason, mut seen) = (String::new(), Seen::default());
        self.object(|r, key| match key {
            "reason" => r.string(&mut seen, 0, &mut reason),
            _ => None,
        })?;
        Some(reason)
    }
}

/// The position of the first `"`, `\` or control character in `bytes`, eight bytes at a
/// time (a byte loop costs several times more over an event's strings).
#[inline(always)]
fn special(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // Flags bytes below `n` (n ≤ 0x80); the lowest flag is exact (a borrow only goes up).
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH;
    let zero = |x: u64| below(x, 1);
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(chunk.try_into().ok()?);
        let found = zero(x ^ (ONES * u64::from(b'"')))
            | zero(x ^ (ONES * u64::from(b'\\')))
            | below(x, 0x20);
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let rest = chunks.remainder();
    rest.iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| at + i)
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, a valid date and time (no leap second), as
/// chrono's RFC 3339 parser reads it; other forms are left to it.
fn timestamp(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    let digits = |at: usize, len: usize| -> Option<u32> {
        b.get(at..at + len)?.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let punctuation = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if !punctuation.iter().all(|&(at, c)| b.get(at) == Some(&c)) {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    let mut at = 19;
    let mut nanos = 0;
    if b.get(at) == Some(&b'.') {
        let start = at + 1;
        let len = b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&len) {
            return None;
        }
        nanos = digits(start, len)? * 10u32.pow(9 - len as u32);
        at = start + len;
    }
    let offset = match *b.get(at)? {
        b'Z' => {
            at += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            let (h, m) = (digits(at + 1, 2)?, digits(at + 4, 2)?);
            if b.get(at + 3) != Some(&b':') || h > 23 || m > 59 {
                return None;
            }
            at += 6;
            let secs = i64::from(h * 3600 + m * 60);
            if sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    if at != b.len() || year == 0 {
        return None;
    }
    let local = chrono::NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?
        .and_hms_opt(hour, minute, second)?;
    Some(Timestamp {
        seconds: local.and_utc().timestamp() - offset,
        nanos: i32::try_from(nanos).ok()?,
    })
}

#[cfg(test)]
mod tests;
