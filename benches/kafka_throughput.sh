#!/usr/bin/env bash
# Kafka-mode throughput of `dunghan serve` (consume, apply, changelog, raised events,
# commit) against a bare rdkafka consumer reading the same topic from the same broker.
#
#   benches/kafka_throughput.sh            # 100 000 dossiers (~528 000 events)
#   DOSSIERS=20000 benches/kafka_throughput.sh
#   WRAP="perf record -g -o /tmp/perf.data" benches/kafka_throughput.sh   # profile serve
#
# Needs the tansu broker that ./tests/run.sh installs (or TANSU=path). Prints one line per
# run and the ratio; the figures go to BENCHMARKS.md with the machine they ran on.
set -euo pipefail
cd "$(dirname "$0")/.."
DOSSIERS="${DOSSIERS:-100000}"
TANSU="${TANSU:-/var/tmp/dunghan-tools/bin/tansu}"
cargo build --release --quiet -p dunghan -p dunghan-benches --bin dunghan --bin bare-consumer
BIN="${CARGO_TARGET_DIR:-target}/release"
DIR="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BROKER="127.0.0.1:$PORT"
"$TANSU" broker --listener-url "tcp://$BROKER" --advertised-listener-url "tcp://$BROKER" \
    --storage-engine memory://tansu/ > "$DIR/tansu.log" 2>&1 &
PIDS=($!)
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$DIR"' EXIT
until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do sleep 0.1; done

export DUNGHAN__KAFKA__BROKERS="$BROKER" DUNGHAN__KAFKA__PARTITIONS=4 \
    DUNGHAN__KAFKA__RESUME_FROM_BEGINNING=true DUNGHAN__ENGINE__RETAIN_ENDED_SECS=315360000 \
    DUNGHAN__LOG__LEVEL=warn

# Starts `dunghan serve` in group $1 with catalog $2; sets METRICS to its metrics address.
serve() {
    ${WRAP:-} "$BIN/dunghan" serve --grpc-listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
        --catalog "$2" > "$DIR/$1.out" 2> "$DIR/$1.log" &
    PIDS+=($!)
    DUNGHAN__KAFKA__GROUP_ID="$1"
    until grep -q '^metrics on' "$DIR/$1.out" 2>/dev/null; do sleep 0.05; done
    METRICS="$(sed -n 's|^metrics on http://\(.*\)/metrics|\1|p' "$DIR/$1.out")"
}

# CPU seconds (user + system) process $1 has used so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
TANSU_PID="${PIDS[0]}"

# 1. The topics, created by dunghan itself (a setup instance in its own group).
"$BIN/dunghan" loadgen --seed 1 --dossiers "$DOSSIERS" --catalog-out "$DIR/catalog.toml" \
    --out "$DIR/events.jsonl" 2>/dev/null
DUNGHAN__KAFKA__GROUP_ID=setup serve setup "$DIR/catalog.toml"
kill -TERM "${PIDS[-1]}"; wait "${PIDS[-1]}" || true
# 2. The input, produced by the load generator.
"$BIN/dunghan" loadgen --seed 1 --dossiers "$DOSSIERS" --kafka-brokers "$BROKER" \
    --topic dunghan.dossier-events 2> "$DIR/loadgen.log"
EVENTS="$(wc -l < "$DIR/events.jsonl")"
# 3. Baseline: a bare consumer reading the topic to its end.
BROKER_CPU0="$(cpu "$TANSU_PID")"
read -r BARE_N BARE_S BARE_RATE < <("$BIN/bare-consumer" "$BROKER" dunghan.dossier-events 2>/dev/null)
echo "bare rdkafka consumer: $BARE_N records in $BARE_S s = $BARE_RATE records/s" \
    "(broker CPU $(python3 -c "print(f'{$(cpu "$TANSU_PID") - $BROKER_CPU0:.2f}')") s)"
# 4. dunghan serve: from ready (partitions assigned and restored) to every event applied.
export DUNGHAN__KAFKA__GROUP_ID=bench
serve bench "$DIR/catalog.toml"
SERVE_PID="${PIDS[-1]}"
curl_metrics() { python3 - "$METRICS" "$1" <<'PY'
import sys, urllib.request
addr, path = sys.argv[1], sys.argv[2]
try:
    r = urllib.request.urlopen(f"http://{addr}{path}", timeout=2)
    print(r.status, sum(float(l.split()[-1]) for l in r.read().decode().splitlines()
                        if l.startswith("dunghan_events_total")))
except Exception:
    print(0, 0)
PY
}
until [ "$(curl_metrics /readyz | cut -d' ' -f1)" = 200 ]; do sleep 0.05; done
START="$(date +%s.%N)"
BROKER_CPU0="$(cpu "$TANSU_PID")" SERVE_CPU0="$(cpu "$SERVE_PID")"
until [ "$(curl_metrics /metrics | cut -d' ' -f2 | cut -d. -f1)" -ge "$EVENTS" ]; do sleep 0.05; done
END="$(date +%s.%N)"
python3 - "$EVENTS" "$START" "$END" "$BARE_RATE" "$BROKER_CPU0" "$(cpu "$TANSU_PID")" \
    "$SERVE_CPU0" "$(cpu "$SERVE_PID")" <<'PY'
import sys
n, start, end, bare = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
broker, serve = float(sys.argv[6]) - float(sys.argv[5]), float(sys.argv[8]) - float(sys.argv[7])
rate = n / (end - start)
print(f"dunghan serve (Kafka mode): {n} events in {end - start:.3f} s = {rate:.0f} events/s"
      f" (serve CPU {serve:.2f} s = {serve / n * 1e6:.1f} µs/event, broker CPU {broker:.2f} s)")
print(f"ratio to the bare consumer: {rate / bare:.2f}")
PY
