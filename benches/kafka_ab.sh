#!/usr/bin/env bash
# Kafka-mode throughput of two or more variants of `dunghan serve` (settings or builds),
# alternated on one broker and one input, so that the machine's drift between runs falls
# on every variant alike. Each run has its own output, changelog and dead-letter topics and
# its own group, and its topics are deleted after it; the bare consumer is measured at the
# start of every round, on the same input, and each run's ratio is to the bare consumer of
# its round (the host's speed drifts).
#
#   VARIANTS="DUNGHAN__KAFKA__PARTITION_THREADS=0;DUNGHAN__KAFKA__PARTITION_THREADS=64" \
#       benches/kafka_ab.sh
#   VARIANTS="BIN=/tmp/old-build;BIN=target/release" ROUNDS=5 benches/kafka_ab.sh
#
# A variant is `NAME=value` pairs separated by spaces, exported for that run (`BIN` names
# a directory holding another `dunghan` binary). ROUNDS (3) rounds of every variant;
# DOSSIERS (100 000) as in kafka_throughput.sh. Prints one line per run: events/s, ratio to
# the round's bare consumer (to every event applied, and to every event's work durable:
# changelog written and checkpointed; nan for a build without that metric), serve's CPU
# per event up to the first (kernel time and page faults), the CPU seconds of the broker
# and of serve's threads, the broker's resident memory, and the host probe (below). Then
# a summary: medians, and in how many rounds each variant beat the first, with a sign
# test's p (below 0.05 only from 6 rounds of 6 on: three rounds prove nothing).
DOSSIERS="${DOSSIERS:-100000}"
: "${VARIANTS:?set VARIANTS, e.g. VARIANTS=\"DUNGHAN__KAFKA__PARTITION_THREADS=0;DUNGHAN__KAFKA__PARTITION_THREADS=64\"}"
source "$(dirname "$0")/kafka_common.sh"

produce_input json

# The host's speed just now: CPU seconds of a fixed amount of work (SHA-256 of 256 MiB of
# zeros, ≈ 0.8 s here), taken before each run. It varied by tens of percent between runs
# minutes apart, as serve's CPU per event did, though it did not predict the run after it
# (BENCHMARKS.md): a batch shows how steady the host was.
probe() {
    local TIMEFORMAT=%U
    { time head -c 268435456 /dev/zero | sha256sum > /dev/null; } 2>&1
}

# Page faults (minor: a page touched for the first time, which the kernel clears) of process $1.
faults() { awk '{ print $10 }' "/proc/$1/stat"; }

# CPU seconds of each of serve's threads, by name (partition threads summed), one per line;
# a thread that ends while being read (a checkpoint's, say) is left out.
threads() {
    local name ns
    for t in /proc/"$SERVE_PID"/task/*; do
        { name="$(tr ' ' _ < "$t/comm")" && ns="$(awk '{ print $1 }' "$t/schedstat")"; } 2>/dev/null \
            && [ -n "$ns" ] || continue
        printf '%s %s %s\n' "${t##*/}" "$name" "$ns"
    done
}

IFS=';' read -ra VARS <<< "$VARIANTS"
n=0
for round in $(seq "${ROUNDS:-3}"); do
    read -r _ _ BARE_RATE < <("$BIN/bare-consumer" "$BROKER" dunghan.dossier-events 2>/dev/null)
    echo "round $round: bare rdkafka consumer $BARE_RATE records/s ($EVENTS records)"
    for v in "${VARS[@]}"; do
        n=$((n + 1))
        (
            # shellcheck disable=SC2086 # a variant is several NAME=value words
            export $v DUNGHAN__KAFKA__OUTPUT_TOPIC="ab.out.$n" \
                DUNGHAN__KAFKA__CHANGELOG_TOPIC="ab.changelog.$n" \
                DUNGHAN__KAFKA__DEAD_LETTER_TOPIC="ab.dead-letter.$n"
            PROBE="$(probe)"
            serve "ab$n" "$DIR/catalog.toml"
            wait_ready
            threads > "$DIR/threads0"
            START="$(date +%s.%N)" CPU0="$(cpu "$SERVE_PID")" SYS0="$(sys_cpu "$SERVE_PID")" \
                BROKER0="$(cpu "$TANSU_PID")" FAULTS0="$(faults "$SERVE_PID")"
            wait_events "$EVENTS"
            END="$(date +%s.%N)" CPU1="$(cpu "$SERVE_PID")" SYS1="$(sys_cpu "$SERVE_PID")" \
                RSS="$(rss "$SERVE_PID")" BROKER1="$(cpu "$TANSU_PID")" BROKER_RSS="$(rss "$TANSU_PID")" \
                FAULTS1="$(faults "$SERVE_PID")"
            threads > "$DIR/threads1"
            wait_durable "$EVENTS" 30 && DURABLE="$(date +%s.%N)" || DURABLE=""
            python3 - "$v" "$EVENTS" "$START" "$END" "$BARE_RATE" "$CPU0" "$CPU1" \
                "$DIR/threads0" "$DIR/threads1" "$SYS0" "$SYS1" "$RSS" "$BROKER0" "$BROKER1" \
                "$BROKER_RSS" "$PROBE" "$DIR/results.tsv" "$round" "$((FAULTS1 - FAULTS0))" \
                "$DURABLE" <<'PY'
import collections, sys
v, n, start, end, bare, c0, c1 = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:8])
def load(path):  # thread id -> (name, CPU ns)
    return {l.split()[0]: (l.split()[1], int(l.split()[2])) for l in open(path)}
by = collections.Counter()
before = load(sys.argv[8])
for tid, (name, ns) in load(sys.argv[9]).items():
    name = "dunghan-p*" if name.startswith("dunghan-p") else name
    by[name] += (ns - before.get(tid, (name, 0))[1]) / 1e9
rate, sys_s = n / (end - start), float(sys.argv[11]) - float(sys.argv[10])
broker_s = float(sys.argv[14]) - float(sys.argv[13])
durable = n / (float(sys.argv[20]) - start) / bare if sys.argv[20] else float("nan")
print(f"{v}: {rate:.0f} events/s, ratio {rate / bare:.2f} (until durable {durable:.2f}), serve {(c1 - c0) / n * 1e6:.1f} µs/event"
      f" (kernel {sys_s:.2f} s, {int(sys.argv[19]) / 1000:.0f} k page faults), broker {broker_s:.2f} CPU-s, resident {int(sys.argv[12]) / 2**20:.0f} MiB;",
      " ".join(f"{k} {s:.2f} s" for k, s in by.most_common() if s >= 0.01),
      f"; broker resident {int(sys.argv[15]) / 2**20:.0f} MiB; host probe {sys.argv[16]} CPU-s")
with open(sys.argv[17], "a") as out:
    print(sys.argv[18], v, f"{rate / bare:.4f}", f"{(c1 - c0) / n * 1e6:.3f}", f"{broker_s:.3f}",
          f"{durable:.4f}", sep="\t", file=out)
PY
            stop_serve
        )
        # The run's own topics go (tansu's memory storage slows as it holds more); the
        # input stays for the next run.
        "$BIN/delete-topics" "$BROKER" "ab.out.$n" "ab.changelog.$n" "ab.dead-letter.$n" \
            > /dev/null || echo "(run $n's topics were not deleted)"
    done
done

# The batch in one table: medians over the rounds, and how often each variant's ratio beat
# the first variant's in the same round (to applied, and until durable).
python3 - "$DIR/results.tsv" <<'PY'
import math, statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
variants = list(dict.fromkeys(r[1] for r in rows))
by = {(r[0], r[1]): r for r in rows}
first = variants[0]

def sign_p(ahead, n):
    """Two-sided sign test: the chance of a split at least this uneven if the variant
    were no different from the first (each round a coin toss)."""
    low = min(ahead, n - ahead)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(low + 1)) / 2**n) if n else 1.0

def versus(mine, column):
    """Rounds this variant was ahead of the first in, counted on one ratio column."""
    pairs = [(float(r[column]), float(by[(r[0], first)][column]))
             for r in mine if (r[0], first) in by]
    pairs = [(a, b) for a, b in pairs if not (math.isnan(a) or math.isnan(b))]
    ahead, even = sum(a > b for a, b in pairs), sum(a == b for a, b in pairs)
    n = len(pairs) - even
    return f"{ahead} of {len(pairs)}" + (f" ({even} even)" if even else "") + f", p = {sign_p(ahead, n):.2f}"

print("summary: variant | median ratio (until durable) | median serve µs/event | median broker CPU-s"
      " | ahead of the first, counted to applied; until durable (sign test p)")
for v in variants:
    mine = [r for r in rows if r[1] == v]
    median = lambda i: statistics.median(float(r[i]) for r in mine)
    ahead = "—" if v == first else f"{versus(mine, 2)}; {versus(mine, 5)}"
    print(f"  {v} | {median(2):.3f} ({median(5):.3f}) | {median(3):.2f} | {median(4):.2f} | {ahead}")
PY
