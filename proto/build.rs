//! Compiles `dunghan/v1/*.proto` into Rust: prost messages (through
//! tonic-prost-build, which will also emit the gRPC stubs once services are
//! declared) plus pbjson serde impls for the proto3 JSON mapping.

use std::env;
use std::error::Error;
use std::path::PathBuf;

/// The schema files, relative to the crate root (which is the include root,
/// so imports read `dunghan/v1/...`).
const PROTOS: &[&str] = &[
    "dunghan/v1/events.proto",
    "dunghan/v1/deadline.proto",
    "dunghan/v1/ingest.proto",
    "dunghan/v1/runtime.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("dunghan_descriptor.bin");

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=dunghan");
    println!("cargo:rerun-if-env-changed=PROTOC");

    // protoc comes from the protoc-bin-vendored crate so that no system package
    // is needed; an explicit PROTOC still wins (e.g. on a platform the crate
    // does not ship a binary for).
    let protoc = match env::var_os("PROTOC") {
        Some(path) => PathBuf::from(path),
        None => protoc_bin_vendored::protoc_bin_path()?,
    };
    // The vendored crate also ships google/protobuf/*.proto (Timestamp,
    // Duration), which the schema imports.
    let wkt_include = protoc_bin_vendored::include_path()?;

    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc);

    let protos: Vec<PathBuf> = PROTOS.iter().map(|p| root.join(p)).collect();
    let includes = vec![root.clone(), wkt_include];

    tonic_prost_build::configure()
        // Kept for gRPC reflection (see `FILE_DESCRIPTOR_SET`) and read below
        // by pbjson-build.
        .file_descriptor_set_path(&descriptor_path)
        // Well-known types come from pbjson-types, not prost-types: they are
        // the same prost messages but also implement the proto3 JSON mapping
        // (RFC 3339 timestamps, "1.5s" durations), which our messages' derived
        // serde impls need.
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_with_config(config, &protos, &includes)?;

    let descriptor_set = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_set)?
        // Defaults kept on purpose: unknown fields and unknown enum names are
        // errors (proto3 JSON parsers reject them unless asked not to), enums
        // are written by name, field names in lowerCamelCase; the parser also
        // accepts the original snake_case names, as the mapping requires.
        .build(&[".dunghan.v1"])?;

    Ok(())
}
