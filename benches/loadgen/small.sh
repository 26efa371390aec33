#!/usr/bin/env bash
# The small load-generator scenario: a simulated province (seed 1: 300 procedures,
# 40 agencies, about 400 departments) and 2 000 dossiers over four weeks of March 2025,
# written to benches/loadgen/out/, then replayed through the SLA engine with the generated
# catalog. Reproducible: the same seed gives byte-identical files (checked by sha256sum).
#
#   benches/loadgen/small.sh                   # 2 000 dossiers (about 10 000 events)
#   DOSSIERS=1000000 DAYS=120 benches/loadgen/small.sh   # the 1 M scale (≈ 0.8 GB of JSON)
#   DUNGHAN=target/release/dunghan benches/loadgen/small.sh   # a binary already built
#
# Environment: DOSSIERS (2000), DAYS (28), SEED (1), OUT (benches/loadgen/out), DUNGHAN
# (default: `cargo run --release --`).
set -euo pipefail
cd "$(dirname "$0")/../.."
DOSSIERS=${DOSSIERS:-2000}
DAYS=${DAYS:-28}
SEED=${SEED:-1}
OUT=${OUT:-benches/loadgen/out}
if [ -n "${DUNGHAN:-}" ]; then
    run() { "$DUNGHAN" "$@"; }
else
    cargo build --release --locked -p dunghan >&2
    run() { "${CARGO_TARGET_DIR:-target}/release/dunghan" "$@"; }
fi
mkdir -p "$OUT"
run loadgen --seed "$SEED" --dossiers "$DOSSIERS" --days "$DAYS" --start 2025-03-03 \
    --catalog-out "$OUT/catalog.toml" --out "$OUT/events.jsonl"
(cd "$OUT" && sha256sum catalog.toml events.jsonl)
# --now pins "the present" so the replay is reproducible too (and 2025 events are not
# judged against a clock in an earlier year).
run replay --catalog "$OUT/catalog.toml" --now 2026-01-01T00:00:00+07:00 \
    "$OUT/events.jsonl" > "$OUT/raised.jsonl"
rejected=$(grep -c '"SLA_EVENT_KIND_REJECTED"' "$OUT/raised.jsonl" || true)
echo "raised $(wc -l < "$OUT/raised.jsonl") events, $rejected rejected -> $OUT/raised.jsonl"
[ "$rejected" = 0 ]
