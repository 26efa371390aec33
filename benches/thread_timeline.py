#!/usr/bin/env python3
"""Samples, every PERIOD seconds (0.05 by default), the share of the machine left idle and
the CPU that each running `dunghan serve` (by thread name, partition threads summed as
`p*`) and the tansu broker used since the last sample, one line per sample, until
stopped. Run it beside a bench to see which threads work when:

    python3 benches/thread_timeline.py > /tmp/timeline.txt & benches/kafka_throughput.sh; kill %1

Reading /proc costs a little CPU itself: at 0.01 s it disturbs what it measures."""
import os
import time

PERIOD = float(os.environ.get("PERIOD", "0.05"))


def processes():
    """pid -> "serve" or "tansu", for the processes of interest now."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if len(cmd) > 1 and cmd[0].endswith(b"dunghan") and cmd[1] == b"serve":
            found[pid] = "serve"
        elif cmd[0].endswith(b"tansu"):
            found[pid] = "tansu"
    return found


def threads(pid):
    """Thread name (first 10 characters; partition threads as `p*`) -> CPU ns so far."""
    cpu = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return cpu
    for tid in tids:
        try:
            name = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
            ns = int(open(f"/proc/{pid}/task/{tid}/schedstat").read().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile
        key = "p*" if name.startswith("dunghan-p") else name[:10]
        cpu[key] = cpu.get(key, 0) + ns
    return cpu


def idle_and_total():
    fields = list(map(int, open("/proc/stat").readline().split()[1:]))
    return fields[3] + fields[4], sum(fields)


def main():
    before, (idle0, total0), start = {}, idle_and_total(), time.time()
    while True:
        time.sleep(PERIOD)
        idle1, total1 = idle_and_total()
        idle = (idle1 - idle0) / max(total1 - total0, 1)
        idle0, total0 = idle1, total1
        row = []
        for pid, kind in sorted(processes().items()):
            now = threads(pid)
            if kind == "tansu":
                now = {"tansu": sum(now.values())}
            last = before.get(pid, now)
            before[pid] = now
            cores = {k: (v - last.get(k, 0)) / (PERIOD * 1e9) for k, v in now.items()}
            busy = " ".join(f"{k}={c:.2f}" for k, c in sorted(cores.items()) if c > 0.05)
            if busy:
                row.append(f"{kind}{pid}: {busy}")
        print(f"{time.time() - start:7.2f} idle={idle:.2f} " + " | ".join(row), flush=True)


if __name__ == "__main__":
    main()
