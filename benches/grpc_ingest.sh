#!/usr/bin/env bash
# Embedded ingest throughput: `dunghan serve` (engine + durable redb store, each batch
# committed before the reply) against a bare tonic server with the same IngestService
# Publish that only decodes the batch and answers ACCEPTED (benches/bare_ingest.rs). Same
# client (benches/ingest_client.rs: events parsed before timing, batches of 1000, one in
# flight), same events (`dunghan loadgen --seed 1`), same run.
#
#   benches/grpc_ingest.sh                       # 20 000 dossiers (~105 000 events)
#   DOSSIERS=100000 benches/grpc_ingest.sh
#
# Prints one line per server and the ratio; the figures go to BENCHMARKS.md with the
# machine and its load (`uptime`).
set -euo pipefail
cd "$(dirname "$0")/.."
DOSSIERS="${DOSSIERS:-20000}"
BATCH="${BATCH:-1000}"
cargo build --release --quiet -p dunghan -p dunghan-benches \
    --bin dunghan --bin bare-ingest --bin ingest-client
BIN="${CARGO_TARGET_DIR:-target}/release"
DIR="$(mktemp -d)"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$DIR"' EXIT

# Waits for "gRPC listening on ADDR" in $1; sets ADDR.
listening() {
    until grep -q '^gRPC listening on' "$1" 2>/dev/null; do sleep 0.05; done
    ADDR="$(sed -n 's/^gRPC listening on //p' "$1")"
}

"$BIN/dunghan" loadgen --seed 1 --dossiers "$DOSSIERS" --catalog-out "$DIR/catalog.toml" \
    --out "$DIR/events.jsonl" 2>/dev/null
echo "events: $(wc -l < "$DIR/events.jsonl") ($DOSSIERS dossiers, loadgen --seed 1); load: $(uptime)"

# 1. Baseline: the bare server.
"$BIN/bare-ingest" > "$DIR/bare.out" &
PIDS+=($!)
listening "$DIR/bare.out"
BARE="$("$BIN/ingest-client" "$ADDR" "$DIR/events.jsonl" "$BATCH")"
echo "bare tonic IngestService: $BARE"
kill "${PIDS[-1]}"

# 2. dunghan serve, embedded, fresh data directory (past events: remember ended dossiers).
DUNGHAN__ENGINE__RETAIN_ENDED_SECS=315360000 DUNGHAN__LOG__LEVEL=warn \
    "$BIN/dunghan" serve --grpc-listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --data-dir "$DIR/data" --catalog "$DIR/catalog.toml" > "$DIR/serve.out" 2> "$DIR/serve.log" &
PIDS+=($!)
listening "$DIR/serve.out"
NODE="$("$BIN/ingest-client" "$ADDR" "$DIR/events.jsonl" "$BATCH")"
echo "dunghan serve (embedded, redb): $NODE"
echo "load after: $(uptime)"
python3 - "$BARE" "$NODE" <<'PY'
import re, sys
rate = lambda s: float(re.search(r"= (\d+) events/s", s).group(1))
print(f"ratio dunghan serve / bare server: {rate(sys.argv[2]) / rate(sys.argv[1]):.3f}")
PY
