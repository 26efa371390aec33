#!/usr/bin/env bash
# Instructions per event on the record path of Kafka-mode `dunghan serve` (apply a record,
# send what it raised, count it: `kafka::runtime::handle`), counted by valgrind's callgrind.
# A load-independent figure: on a VM whose speed drifts by ±15 % between runs, and without
# hardware counters for `perf stat`, it shows a change of 1 % that events/s cannot.
#
#   benches/kafka_instructions.sh                       # this build
#   BINS="/tmp/old-build target/release" benches/kafka_instructions.sh   # builds side by side
#   DOSSIERS=5000 TOP=40 benches/kafka_instructions.sh  # smaller input, longer profile
#   TOGGLE='*BaseProducer*poll*' benches/kafka_instructions.sh   # the delivery thread
#   TOGGLE="" THREADS=yes benches/kafka_instructions.sh  # the whole process, file per thread
#
# BINS: directories holding a `dunghan` binary (default: the release build). DOSSIERS
# (20 000, ≈ 105 000 events): the same seeded input for every build, JSON as in
# kafka_throughput.sh. Prints instructions per event in the functions counted (and per
# thread with THREADS=yes) and, with TOP=n, the n costliest functions in them (inclusive);
# KEEP=dir keeps the callgrind files. Needs valgrind; about a minute per build.
DOSSIERS="${DOSSIERS:-20000}"
source "$(dirname "$0")/kafka_common.sh"
command -v valgrind > /dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
BINS="${BINS:-$BIN}"
# The functions counted (all of serve with TOGGLE=""; THREADS=yes writes one file per thread).
TOGGLE="${TOGGLE-*kafka*runtime*handle*}"

produce_input json
# Under valgrind everything runs tens of times slower: a longer session timeout keeps the
# instance in its group.
printf '[kafka.properties]\n"session.timeout.ms" = "120000"\n"heartbeat.interval.ms" = "10000"\n' \
    > "$DIR/slow.toml"

n=0
for build in $BINS; do
    n=$((n + 1))
    (
        export DUNGHAN_CONFIG="$DIR/slow.toml" DUNGHAN__KAFKA__GROUP_ID="instructions$n" \
            DUNGHAN__KAFKA__OUTPUT_TOPIC="instructions.out.$n" \
            DUNGHAN__KAFKA__CHANGELOG_TOPIC="instructions.changelog.$n" \
            DUNGHAN__KAFKA__DEAD_LETTER_TOPIC="instructions.dead-letter.$n"
        valgrind --tool=callgrind --callgrind-out-file="$DIR/callgrind.$n" \
            ${TOGGLE:+--toggle-collect="$TOGGLE"} --separate-threads="${THREADS:-no}" \
            "$build/dunghan" serve --grpc-listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
            --catalog "$DIR/catalog.toml" > "$DIR/vg$n.out" 2> "$DIR/vg$n.log" &
        SERVE_PID=$!
        until grep -q '^metrics on' "$DIR/vg$n.out" 2>/dev/null; do
            kill -0 "$SERVE_PID" 2>/dev/null || { cat "$DIR/vg$n.log" >&2; exit 1; }
            sleep 0.2
        done
        METRICS="$(sed -n 's|^metrics on http://\(.*\)/metrics|\1|p' "$DIR/vg$n.out")"
        for _ in $(seq 600); do
            [ "$(metric dunghan_events_total int)" -ge "$EVENTS" ] && break
            sleep 1
        done
        seen="$(metric dunghan_events_total int)"
        stop_serve
        [ "$seen" -ge "$EVENTS" ] || { echo "$build: only $seen of $EVENTS events in 10 min" >&2; exit 1; }
        # One file, or one per thread (callgrind.N-01, -02, …) with THREADS=yes.
        total() { awk '/^(summary|totals):/ { t = $2; exit } END { printf "%.0f\n", t }' "$1"; }
        ir=0
        for f in "$DIR/callgrind.$n"*; do ir=$((ir + $(total "$f"))); done
        echo "$build/dunghan: $EVENTS events, $((ir / EVENTS)) instructions/event counted"
        for f in "$DIR/callgrind.$n"*; do
            [ "${THREADS:-no}" = yes ] || break
            t="$(total "$f")"
            if [ "$t" -ge "$EVENTS" ]; then echo "  thread ${f##*-}: $((t / EVENTS))/event"; fi
        done
        [ -z "${KEEP:-}" ] || cp "$DIR/callgrind.$n"* "$KEEP/"
        if [ -n "${TOP:-}" ]; then
            for f in "$DIR/callgrind.$n"*; do
                callgrind_annotate --inclusive=yes "$f" 2>/dev/null \
                    | grep -E '^ *[0-9,]+ \(' | sed -n "2,$((TOP + 1))p" | cut -c1-180
            done
        fi
    )
done
