# Shared by the Kafka-mode bench scripts (sourced, not run): builds the release binaries,
# starts a tansu broker (memory storage) on a free loopback port, and gives helpers to
# start `dunghan serve` in Kafka mode and read its endpoints.
#
# Needs the tansu broker that ./tests/run.sh installs (or TANSU=path).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TANSU="${TANSU:-/var/tmp/dunghan-tools/bin/tansu}"
cargo build --release --quiet -p dunghan -p dunghan-benches \
    --bin dunghan --bin bare-consumer --bin produce-lines --bin delete-topics
BIN="${CARGO_TARGET_DIR:-target}/release"
DIR="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BROKER="127.0.0.1:$PORT"
"$TANSU" broker --listener-url "tcp://$BROKER" --advertised-listener-url "tcp://$BROKER" \
    --storage-engine memory://tansu/ > "$DIR/tansu.log" 2>&1 &
PIDS=($!)
TANSU_PID="${PIDS[0]}"
# KEEP_DIR=1 keeps the logs and files (the path is printed at the end).
trap 'kill "${PIDS[@]}" 2>/dev/null || true; if [ -n "${KEEP_DIR:-}" ]; then echo "kept $DIR" >&2; else rm -rf "$DIR"; fi' EXIT
until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do sleep 0.1; done

export DUNGHAN__KAFKA__BROKERS="$BROKER" DUNGHAN__KAFKA__PARTITIONS=4 \
    DUNGHAN__KAFKA__RESUME_FROM_BEGINNING=true DUNGHAN__ENGINE__RETAIN_ENDED_SECS=315360000 \
    DUNGHAN__LOG__LEVEL="${DUNGHAN__LOG__LEVEL:-warn}"

# Starts `dunghan serve` in group $1 with catalog $2; sets METRICS to its metrics address
# and SERVE_PID to its process.
serve() {
    DUNGHAN__KAFKA__GROUP_ID="$1" "$BIN/dunghan" serve --grpc-listen 127.0.0.1:0 \
        --metrics-listen 127.0.0.1:0 --catalog "$2" > "$DIR/$1.out" 2> "$DIR/$1.log" &
    SERVE_PID=$!
    PIDS+=("$SERVE_PID")
    until grep -q '^metrics on' "$DIR/$1.out" 2>/dev/null; do
        # An instance that exits (a bad setting, say) is reported, not waited for forever.
        kill -0 "$SERVE_PID" 2>/dev/null || { echo "dunghan serve exited:" >&2; cat "$DIR/$1.log" >&2; exit 1; }
        sleep 0.05
    done
    METRICS="$(sed -n 's|^metrics on http://\(.*\)/metrics|\1|p' "$DIR/$1.out")"
}

# Stops the last started instance (SIGTERM: last checkpoint, leave the group).
stop_serve() { kill -TERM "$SERVE_PID"; wait "$SERVE_PID" || true; }

# Creates the topics: an instance in its own group starts (creating them) and stops.
# Extra DUNGHAN__KAFKA__* settings in the environment name other topics.
create_topics() { serve "setup-$RANDOM" "$1"; stop_serve; }

# The seeded province of $DOSSIERS dossiers: its catalog written to $DIR, the topics
# created, and its events produced to the input topic in format $1 (json or protobuf) by
# the load generator, whose summary gives EVENTS, their count.
produce_input() {
    "$BIN/dunghan" loadgen --seed 1 --catalog-out "$DIR/catalog.toml"
    create_topics "$DIR/catalog.toml"
    "$BIN/dunghan" loadgen --seed 1 --dossiers "$DOSSIERS" --kafka-brokers "$BROKER" \
        --kafka-format "$1" --topic dunghan.dossier-events 2> "$DIR/loadgen.log"
    EVENTS="$(sed -n 's/^loadgen: \([0-9]*\) events.*/\1/p' "$DIR/loadgen.log")"
    [ -n "$EVENTS" ] || { echo "loadgen gave no summary:" >&2; cat "$DIR/loadgen.log" >&2; exit 1; }
}

# CPU seconds (user + system) process $1 has used so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }

# CPU seconds of process $1 in the kernel (system time) so far.
sys_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", $15 / hz }' "/proc/$1/stat"; }

# Resident memory of process $1 in bytes.
rss() { awk '/^VmRSS/ { printf "%.0f\n", $2 * 1024 }' "/proc/$1/status"; }

# The response to GET $1 on the metrics listener, status line first (empty when it does not
# answer). Bash's /dev/tcp and awk only: a python3 start-up per poll took ≈ 0.15 CPU-s,
# polled every 50 ms that was most of a core taken from the service measured.
http_get() {
    local fd
    exec {fd}<>"/dev/tcp/${METRICS%:*}/${METRICS##*:}" 2>/dev/null || return 0
    printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$1" "$METRICS" >&"$fd"
    cat <&"$fd"
    exec {fd}<&-
}

# HTTP status of path $1 on the metrics listener (0 when it does not answer).
http_status() { http_get "$1" | awk 'NR == 1 { s = $2 } END { print s + 0 }'; }

# Sum of the samples of metric $1 (0 when unreachable); its integer part with `int`.
metric() {
    http_get /metrics | awk -v m="$1" -v as="${2:-}" '
        { name = $1; sub(/\{.*/, "", name) }
        name == m { s += $NF }
        END { if (as == "int") printf "%d\n", s; else print s + 0 }'
}

# Waits until the instance is ready (partitions assigned and restored).
wait_ready() { until [ "$(http_status /readyz)" = 200 ]; do sleep 0.05; done; }

# Waits until the instance has counted $1 input events. Each look renders all of /metrics
# in the instance (≈ 2.5 ms of its CPU with a province's series; 7–9 ms before
# `family.rs`), so the pause is half the time left at the rate seen since the last look
# (20 ms to 0.5 s): about ten looks in a 2 s run, where one every 0.1 s took 4–5 % of
# serve's CPU, and the end is still seen within about 20 ms.
wait_events() {
    local n t last_n=0 last_t pause=0.1
    last_t="$(date +%s.%N)"
    until n="$(metric dunghan_events_total int)"; [ "$n" -ge "$1" ]; do
        t="$(date +%s.%N)"
        pause="$(awk -v n="$n" -v ln="$last_n" -v t="$t" -v lt="$last_t" -v goal="$1" 'BEGIN {
            p = (n > ln && t > lt) ? (goal - n) * (t - lt) / (n - ln) / 2 : 0.1
            printf "%.3f", p < 0.02 ? 0.02 : (p > 0.5 ? 0.5 : p) }')"
        last_n="$n" last_t="$t"
        sleep "$pause"
    done
}

# Waits (at most $2 seconds, default 60) until the instance's work on the first $1 input
# records is durable: its checkpoints cover them (`dunghan_kafka_checkpoint_offset`
# summed over the partitions: input offsets start at 0), looking every 50 ms (each look
# costs the instance ≈ 2.5 ms of CPU). Fails when that takes longer (a build without the
# metric, say).
wait_durable() {
    local until=$(( $(date +%s) + ${2:-60} ))
    until [ "$(metric dunghan_kafka_checkpoint_offset int)" -ge "$1" ]; do
        [ "$(date +%s)" -lt "$until" ] || return 1
        sleep 0.05
    done
}
