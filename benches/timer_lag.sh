#!/usr/bin/env bash
# Timer-fire lag at a 17:00 burst, restart time and memory per open dossier of the embedded
# node (`dunghan serve`, durable redb store), with a naive peer in the same run.
#
#   benches/timer_lag.sh                          # OPEN=1000000, 10 % due at 17:00
#   OPEN=10000000 benches/timer_lag.sh            # the 10 M scale (hours of loading here)
#   OPEN=100000 BURST_SHARE=0.5 benches/timer_lag.sh
#
# 1. `timer-lag gen` writes OPEN open dossiers (a receipt and one active step each); the
#    share BURST_SHARE is due exactly at Fri 20/11/2026 17:00 +07:00 (day-based deadlines
#    end at 17:00), the rest in December.
# 2. An empty node's resident set (the baseline of the memory figure).
# 3. Load: `dunghan serve --ingest` with the clock started at 16:40 that day (what is due
#    before then fires during the load), then SIGTERM.
# 4. Restart #1 (clock 16:50): time from process start to serving (restart time) and the
#    resident set with OPEN open dossiers; SIGTERM.
# 5. Restart #2 with the clock started restart-time + LEAD seconds before 17:00; a watcher
#    (`timer-lag watch`, WatchSlaEvents) measures per raised event received minus
#    raised_at; the node's own dunghan_timer_fire_lag_seconds histogram is printed too.
# 6. The naive peer: one tokio sleep_until task per timer, same counts (`timer-lag naive`).
set -euo pipefail
cd "$(dirname "$0")/.."
OPEN="${OPEN:-1000000}"
BURST_SHARE="${BURST_SHARE:-0.1}"
LEAD="${LEAD:-15}"
DAY=2026-11-20
BURST_AT=1795168800   # 2026-11-20T17:00:00+07:00
cargo build --release --quiet -p dunghan -p dunghan-benches --bin dunghan --bin timer-lag
BIN="${CARGO_TARGET_DIR:-target}/release"
DIR="${WORKDIR:-$(mktemp -d)}"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; [ -n "${WORKDIR:-}" ] || rm -rf "$DIR"' EXIT
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; load: $(uptime)"

# Starts `dunghan serve` on data dir $1 with the clock at $2 (extra args after); waits for
# it to serve. Sets PID, GRPC, METRICS and READY_S (seconds from start to serving).
serve() {
    local data="$1" clock="$2"; shift 2
    rm -f "$DIR/serve.out"
    local t0; t0="$(date +%s.%N)"
    DUNGHAN__LOG__LEVEL=warn "$BIN/dunghan" serve --grpc-listen 127.0.0.1:0 \
        --metrics-listen 127.0.0.1:0 --data-dir "$data" --catalog "$DIR/catalog.toml" \
        --clock-start "$clock" "$@" > "$DIR/serve.out" 2>> "$DIR/serve.log" &
    PID=$!
    PIDS+=("$PID")
    until grep -q '^metrics on' "$DIR/serve.out" 2>/dev/null; do
        kill -0 "$PID" 2>/dev/null || { cat "$DIR/serve.log"; exit 1; }
        sleep 0.05
    done
    READY_S="$(python3 -c "import time; print(f'{time.time() - $t0:.1f}')")"
    GRPC="$(sed -n 's/^gRPC listening on //p' "$DIR/serve.out")"
    METRICS="$(sed -n 's|^metrics on http://\(.*\)/metrics|\1|p' "$DIR/serve.out")"
}
stop() { kill -TERM "$PID"; wait "$PID" || true; }
rss() { awk '/^(VmRSS|VmHWM)/{printf "%s %d kB  ", $1, $2}' "/proc/$PID/status"; }
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$PID/status"; }

# 1. The data set.
[ -s "$DIR/events.jsonl" ] || "$BIN/timer-lag" gen "$OPEN" "$BURST_SHARE" "$DIR"
# 2. The empty node.
serve "$DIR/empty" "${DAY}T16:40:00+07:00"
sleep 2
EMPTY_KB="$(rss_kb)"
echo "empty node: $(rss)"
stop
# 3. Load (kept in $DIR/loaded: each restart below runs on a fresh copy, since a store
#    that has seen the burst only finds its raised events already stored).
if [ ! -d "$DIR/loaded" ]; then
    serve "$DIR/loading" "${DAY}T16:40:00+07:00" --ingest "$DIR/events.jsonl"
    echo "load: $(grep '^ingested' "$DIR/serve.out") in ${READY_S} s; $(rss)"
    stop
    mv "$DIR/loading" "$DIR/loaded"
fi
# 4. Restart #1: restart time and memory.
rm -rf "$DIR/data"; cp -r "$DIR/loaded" "$DIR/data"
serve "$DIR/data" "${DAY}T16:50:00+07:00"
RESTART_S="$READY_S"
sleep 2
FULL_KB="$(rss_kb)"
echo "restart with $OPEN open dossiers: serving after ${RESTART_S} s; $(rss)"
python3 -c "print(f'memory per open dossier (VmRSS full - empty) / N: {($FULL_KB - $EMPTY_KB) * 1024 / $OPEN:.0f} B')"
stop
# 5. Restart #2: the burst.
CLOCK="$(python3 -c "
import datetime as d
t = d.datetime.fromtimestamp($BURST_AT - $RESTART_S - $LEAD, d.timezone(d.timedelta(hours=7)))
print(t.isoformat(timespec='seconds'))")"
rm -rf "$DIR/data"; cp -r "$DIR/loaded" "$DIR/data"
serve "$DIR/data" "$CLOCK"
echo "burst run: clock started at $CLOCK, serving after ${READY_S} s; load: $(uptime)"
"$BIN/timer-lag" watch "$GRPC" "$METRICS" "$BURST_AT" 5 | tee "$DIR/watch.out"
python3 - "$METRICS" <<'PY'
import sys, urllib.request
body = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics").read().decode()
buckets = [(float(l.split('le="')[1].split('"')[0].replace("+Inf", "inf")), float(l.split()[-1]))
           for l in body.splitlines() if l.startswith("dunghan_timer_fire_lag_seconds_bucket")]
total = buckets[-1][1] if buckets else 0
def q(p):
    return next((le for le, c in buckets if c >= p * total), float("nan"))
print(f"node histogram dunghan_timer_fire_lag_seconds: {total:.0f} observed, "
      f"p50 <= {q(0.5)*1000:g} ms, p99 <= {q(0.99)*1000:g} ms (bucket bounds)")
PY
echo "load after the burst: $(uptime)"
stop
# 6. The naive peer.
"$BIN/timer-lag" naive "$OPEN" "$BURST_SHARE"
