#!/usr/bin/env python3
"""Peer baseline for BENCHMARKS.md: numpy.busday_offset / busday_count on the Vietnamese calendar.

Same shape of work as the `add_working_days` and `working_time_between` criterion groups:
N random dates 2000-01-01 .. 2030-12-31 (N = 65536 by default), 1-30 working days to add,
pairs up to a year apart. numpy works in whole days only (no clock time, no half days, no
working hours), so this is the best case for the peer.

Calendar: weekmask Mon-Fri, holidays = every weekday that dunghan's national calendar marks
non-working in 2000-2031, read from the CLI (`dunghan calendar YEAR --json`). numpy cannot
express a Saturday worked in exchange for a bridge day; those swapped working Saturdays
(a handful a year) are left out, which only makes numpy's job easier.

Usage (from the repository root):
    python3 benches/peer_numpy.py [--n 65536] [--repeat 20]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def vietnamese_holidays(first, last):
    """Weekdays that are non-working, and weekend days that are worked, per the dunghan CLI."""
    exe = os.path.join(ROOT, "target", "debug", "dunghan")
    built = subprocess.run(["cargo", "build", "-q", "-p", "dunghan"], cwd=ROOT)
    if built.returncode != 0:
        if not os.path.exists(exe):
            sys.exit("peer_numpy.py: `cargo build -p dunghan` failed and there is no "
                     f"{exe} to read the calendar from")
        print(f"warning: `cargo build -p dunghan` failed; using the existing {exe}",
              file=sys.stderr)
    off, swapped = [], []
    for year in range(first, last + 1):
        out = subprocess.run(
            [exe, "calendar", str(year), "--json"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
        for entry in json.loads(out):
            d = np.datetime64(entry["date"], "D")
            weekday = (d.astype("int64") + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
            if not entry["working"] and weekday < 5:
                off.append(d)
            elif entry["working"] and weekday >= 5:
                swapped.append(d)
    return np.array(sorted(set(off)), dtype="datetime64[D]"), swapped


def best_rate(fn, n, repeat):
    """Operations per second: best and median over `repeat` timed runs of `fn` (n ops each)."""
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return n / times[0], n / times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=65536, help="dates per call (default 65536)")
    ap.add_argument("--repeat", type=int, default=20, help="timed calls (default 20)")
    ap.add_argument("--seed", type=int, default=20260213)
    args = ap.parse_args()

    holidays, swapped = vietnamese_holidays(2000, 2031)
    cal = np.busdaycalendar(weekmask="1111100", holidays=holidays)

    rng = np.random.default_rng(args.seed)
    lo = np.datetime64("2000-01-01", "D").astype("int64")
    hi = np.datetime64("2031-01-01", "D").astype("int64")
    dates = rng.integers(lo, hi, size=args.n).astype("datetime64[D]")
    offsets = rng.integers(1, 31, size=args.n)
    ends = dates + rng.integers(0, 366, size=args.n).astype("timedelta64[D]")

    offset_best, offset_med = best_rate(
        lambda: np.busday_offset(dates, offsets, roll="forward", busdaycal=cal), args.n, args.repeat
    )
    count_best, count_med = best_rate(
        lambda: np.busday_count(dates, ends, busdaycal=cal), args.n, args.repeat
    )

    print(f"numpy {np.__version__}, Python {platform.python_version()}, {platform.machine()}")
    print(f"calendar: Mon-Fri + {len(holidays)} weekday holidays 2000-2031 from dunghan "
          f"({len(swapped)} swapped working Saturdays not expressible, left out)")
    print(f"n = {args.n} per call, {args.repeat} timed calls")
    print(f"busday_offset (add 1-30 working days): best {offset_best / 1e6:.2f} M/s, "
          f"median {offset_med / 1e6:.2f} M/s")
    print(f"busday_count  (pairs up to 1 year):    best {count_best / 1e6:.2f} M/s, "
          f"median {count_med / 1e6:.2f} M/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
