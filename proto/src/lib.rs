//! dunghan.v1 protobuf types: dossier lifecycle events in, SLA events out.
//!
//! The schema lives in `proto/dunghan/v1/*.proto`; `build.rs` compiles it with
//! prost (through tonic-prost-build) and adds serde impls for the canonical
//! proto3 JSON mapping (pbjson). Both wire forms therefore work on the same
//! types:
//!
//! ```
//! use dunghan_proto::v1::{dossier_event::Payload, Channel, DossierEvent};
//! use prost::Message;
//!
//! let line = r#"{"eventId":"e1","dossierId":"D-1","occurredAt":"2026-10-05T10:00:00+07:00",
//!     "received":{"procedureCode":"2.000488","agencyId":"so-vhtt","channel":"CHANNEL_COUNTER"}}"#;
//! let event: DossierEvent = serde_json::from_str(line).unwrap();
//! let Some(Payload::Received(received)) = &event.payload else { panic!("not received") };
//! assert_eq!(received.channel(), Channel::Counter);
//!
//! let bytes = event.encode_to_vec();
//! assert_eq!(DossierEvent::decode(bytes.as_slice()).unwrap(), event);
//! ```
//!
//! Well-known types (`Timestamp`, `Duration`) are `pbjson_types`' (re-exported
//! here as [`pbjson_types`]), which are prost messages with JSON support.

pub use pbjson_types;

pub mod json;

/// Package `dunghan.v1`: messages and enums generated from the `.proto` files,
/// with their `serde` impls.
// Generated code follows prost's and pbjson's conventions, not ours, so the
// workspace lints are waived here and only here. None of them fires with
// prost 0.14 / pbjson 0.9; the waiver keeps a generator upgrade from breaking
// `-D warnings` builds.
#[allow(unreachable_pub, missing_debug_implementations, clippy::all)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/dunghan.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/dunghan.v1.serde.rs"));
}

/// The encoded `google.protobuf.FileDescriptorSet` of the dunghan schema and
/// its imports (with source comments), for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/dunghan_descriptor.bin"));
