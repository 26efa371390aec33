#!/usr/bin/env bash
# Kafka-mode restore: time from partition assignment to ready for OPEN open dossiers,
# against a bare rdkafka consumer reading the same changelog from the same broker; and
# the resident memory per open dossier of the instance that restored them.
#
#   benches/kafka_restore.sh                # 1 000 000 open dossiers
#   OPEN=100000 benches/kafka_restore.sh
#   PERF_RECORD=/tmp/perf.data benches/kafka_restore.sh   # profile the restore
#
# Needs the tansu broker that ./tests/run.sh installs (or TANSU=path).
OPEN="${OPEN:-1000000}"
source "$(dirname "$0")/kafka_common.sh"

# 1. A catalog, the topics, and OPEN receipts of the last three days (still open).
"$BIN/dunghan" loadgen --seed 1 --dossiers 1 --catalog-out "$DIR/catalog.toml" \
    --out /dev/null 2>/dev/null
python3 - "$DIR/catalog.toml" "$OPEN" > "$DIR/open.tsv" <<'PY'
import datetime, json, random, sys, tomllib
procedures = tomllib.load(open(sys.argv[1], "rb"))["procedure"]
rng = random.Random(1)
tz = datetime.timezone(datetime.timedelta(hours=7))
now = datetime.datetime.now(tz).replace(microsecond=0)
channels = ["CHANNEL_COUNTER", "CHANNEL_ONLINE", "CHANNEL_POSTAL"]
for i in range(int(sys.argv[2])):
    p = rng.choice(procedures)
    at = now - datetime.timedelta(seconds=rng.randrange(3600, 3 * 86400))
    dossier = f"OPEN-{i:08d}"
    event = {"eventId": f"{dossier}-0", "dossierId": dossier, "occurredAt": at.isoformat(),
             "received": {"procedureCode": p["code"], "agencyId": p["agency"],
                          "channel": rng.choice(channels)}}
    print(f"{dossier}\t{json.dumps(event, separators=(',', ':'))}")
PY
serve empty "$DIR/catalog.toml"
wait_ready
EMPTY_RSS="$(rss "$SERVE_PID")"
stop_serve
"$BIN/produce-lines" "$BROKER" dunghan.dossier-events "$DIR/open.tsv" > /dev/null
# 2. A first instance applies them and checkpoints (histories in the changelog) on SIGTERM.
serve bench "$DIR/catalog.toml"
wait_events "$OPEN"
# Checkpointed (the open-dossier gauge is refreshed at each checkpoint).
wait_durable "$OPEN" 120 || { echo "not checkpointed 120 s after the input was applied" >&2; exit 1; }
OPEN_NOW="$(metric dunghan_open_dossiers int)"
stop_serve
# 3. Baseline: a bare consumer reading the changelog to its end.
read -r BARE_N BARE_S BARE_RATE < <("$BIN/bare-consumer" "$BROKER" dunghan.changelog 2>/dev/null)
echo "bare rdkafka consumer: $BARE_N changelog records in $BARE_S s = $BARE_RATE records/s"
# 4. A second instance in the same group: assignment, restore, ready.
STARTED="$(date +%s.%N)"
DUNGHAN__LOG__LEVEL=info serve bench "$DIR/catalog.toml"
if [ -n "${PERF_RECORD:-}" ]; then
    perf record -F 499 --call-graph dwarf,32768 -o "$PERF_RECORD" -p "$SERVE_PID" 2>/dev/null &
    PERF_PID=$!
fi
wait_ready
if [ -n "${PERF_RECORD:-}" ]; then kill -INT "$PERF_PID"; wait "$PERF_PID" || true; fi
READY="$(date +%s.%N)"
RESTORE="$(metric dunghan_kafka_restore_seconds)"
grep -o "changelog_records.*" "$DIR/bench.log" | tail -1
RSS="$(rss "$SERVE_PID")"
python3 - "$OPEN_NOW" "$STARTED" "$READY" "$RESTORE" "$BARE_S" "$RSS" "$EMPTY_RSS" <<'PY'
import sys
open_, started, ready, restore, bare, rss, empty = (float(a) for a in sys.argv[1:])
print(f"dunghan serve (Kafka mode): {open_:.0f} open dossiers restored in {restore:.3f} s "
      f"(assignment to ready; process start to ready {ready - started:.3f} s)")
print(f"ratio of the bare changelog read to the restore: {bare / restore:.2f}")
print(f"resident memory: {rss / 2**20:.0f} MiB with them, {empty / 2**20:.0f} MiB empty: "
      f"{(rss - empty) / open_:.0f} B per open dossier")
PY
