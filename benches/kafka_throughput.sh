#!/usr/bin/env bash
# Kafka-mode throughput of `dunghan serve` (consume, apply, changelog, raised events,
# commit) against a bare rdkafka consumer reading the same topic from the same broker.
#
#   benches/kafka_throughput.sh            # 100 000 dossiers (~528 000 events)
#   DOSSIERS=20000 benches/kafka_throughput.sh
#   FORMAT=protobuf benches/kafka_throughput.sh   # input in protobuf instead of JSON
#   PERF_RECORD=/tmp/perf.data benches/kafka_throughput.sh   # profile serve while it works
#   PERF_STAT=1 benches/kafka_throughput.sh   # also instructions per event (load-independent)
#
# Needs the tansu broker that ./tests/run.sh installs (or TANSU=path). Prints one line per
# run and the ratio; the figures go to BENCHMARKS.md with the machine they ran on.
DOSSIERS="${DOSSIERS:-100000}"
FORMAT="${FORMAT:-json}"
source "$(dirname "$0")/kafka_common.sh"

# 1-2. The topics, created by dunghan itself, and the input (and the second baseline's
# output topic).
produce_input "$FORMAT"
DUNGHAN__KAFKA__INPUT_TOPIC=bench.pipe create_topics "$DIR/catalog.toml"
# 3. Baseline: a bare consumer reading the topic to its end.
BROKER_CPU0="$(cpu "$TANSU_PID")"
read -r BARE_N BARE_S BARE_RATE < <("$BIN/bare-consumer" "$BROKER" dunghan.dossier-events 2>/dev/null)
echo "bare rdkafka consumer: $BARE_N records in $BARE_S s = $BARE_RATE records/s" \
    "(broker CPU $(python3 -c "print(f'{$(cpu "$TANSU_PID") - $BROKER_CPU0:.2f}')") s)"
# 3b. Second baseline: a bare pipe, each record produced unchanged to another topic.
read -r _ PIPE_S PIPE_RATE < <("$BIN/bare-consumer" "$BROKER" dunghan.dossier-events bench.pipe 2>/dev/null)
echo "bare consume-and-produce pipe: $BARE_N records in $PIPE_S s = $PIPE_RATE records/s"
# 4. dunghan serve: from ready (partitions assigned and restored) to every event applied
# (the CPU seconds are read after the next step, so they include the last checkpoint) ...
serve bench "$DIR/catalog.toml"
wait_ready
START="$(date +%s.%N)"
BROKER_CPU0="$(cpu "$TANSU_PID")" SERVE_CPU0="$(cpu "$SERVE_PID")"
if [ -n "${PERF_STAT:-}" ]; then
    perf stat -e instructions -x, -o "$DIR/perf.txt" -p "$SERVE_PID" & PERF_PID=$!
elif [ -n "${PERF_RECORD:-}" ]; then
    perf record -F 499 --call-graph dwarf,32768 -o "$PERF_RECORD" -p "$SERVE_PID" 2>/dev/null &
    PERF_PID=$!
fi
wait_events "$EVENTS"
END="$(date +%s.%N)"
# ... and to every event's work durable: changelog written and checkpointed.
wait_durable "$EVENTS" && DURABLE="$(date +%s.%N)" || DURABLE=""
if [ -n "${PERF_RECORD:-}" ]; then
    kill -INT "$PERF_PID"; wait "$PERF_PID" || true
elif [ -n "${PERF_STAT:-}" ]; then
    kill -INT "$PERF_PID"; wait "$PERF_PID" || true
    awk -F, -v n="$EVENTS" '/instructions/ { printf "serve: %.0f instructions/event\n", $1 / n }' "$DIR/perf.txt"
fi
python3 - "$EVENTS" "$START" "$END" "$BARE_RATE" "$BROKER_CPU0" "$(cpu "$TANSU_PID")" \
    "$SERVE_CPU0" "$(cpu "$SERVE_PID")" "$PIPE_RATE" "$DURABLE" <<'PY'
import sys
n, start, end, bare = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
broker, serve = float(sys.argv[6]) - float(sys.argv[5]), float(sys.argv[8]) - float(sys.argv[7])
rate = n / (end - start)
print(f"dunghan serve (Kafka mode): {n} events in {end - start:.3f} s = {rate:.0f} events/s"
      f" (serve CPU {serve:.2f} s = {serve / n * 1e6:.1f} µs/event, broker CPU {broker:.2f} s)")
print(f"ratio to the bare consumer: {rate / bare:.2f}; to the bare pipe: {rate / float(sys.argv[9]):.2f}")
if sys.argv[10]:
    durable = n / (float(sys.argv[10]) - start)
    print(f"until durable (checkpointed): {float(sys.argv[10]) - start:.3f} s = {durable:.0f} events/s,"
          f" ratio to the bare consumer {durable / bare:.2f}")
PY
