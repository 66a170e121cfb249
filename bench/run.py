#!/usr/bin/python3
# run.py — runs the pool benchmarks of fiber and of its Python peers side
# by side and prints one table (or JSON with --json).
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   /usr/bin/python3 bench/run.py [--build-dir BUILD] [--json] [--quick]
#   fiber bench [--json] [--quick]
#
# --bench-dir DIR names the directory holding the bench programs directly
# (`fiber bench` passes it: BUILD/bench, or the installed
# LIBEXECDIR/fiber-1.0/bench).
#
# Everything runs with 2 workers and an identity task: fiber's `process`
# pool with the built-in task fiber.echo (bench-pool, C), and Python's
# multiprocessing.Pool and concurrent.futures.ProcessPoolExecutor (fork)
# (peers.py).  The peak RSS figures come from separate runs of each program
# that only map 1,000,000 integers.

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"
RSS_ITEMS = 1_000_000

# (key, label, unit, higher is better)
ROWS = [
    ("map_cs1", "map, chunksize 1", "items/s", True),
    ("apply_async", "apply_async ×N, then get", "items/s", True),
    ("apply_sync", "apply, sync round trip", "µs", False),
    ("map_default", "map, automatic chunksize", "items/s", True),
    ("pool_start", "pool start + first apply", "ms", False),
]

# key: (description, comparison, bound)
TARGETS = {
    "map_cs1": ("map chunksize=1 ≥ 5× multiprocessing.Pool", ">=", 5.0),
    "apply_sync": ("sync apply ≤ 0.5× multiprocessing latency", "<=", 0.5),
    "process_start": ("FiberProcess start+join ≤ 0.25× mp fork start", "<=", 0.25),
    "rss": ("master peak RSS for a map of 1e6 integers < 256 MiB", "<", 256.0),
}


def run_json(argv, what):
    started = time.monotonic()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"run.py: {what} failed (exit status {proc.returncode})")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if not lines:
        raise SystemExit(f"run.py: {what} printed nothing")
    out = json.loads(lines[-1])
    out["_seconds"] = time.monotonic() - started
    return out


def fmt(value, unit):
    if value is None:
        return "–"
    if unit == "items/s":
        if value >= 1e6:
            return f"{value / 1e6:.2f} M"
        if value >= 1e3:
            return f"{value / 1e3:.1f} k"
        return f"{value:.0f}"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def check(target, ratio):
    _, op, bound = TARGETS[target]
    if ratio is None:
        return None
    return {">=": ratio >= bound, "<=": ratio <= bound, "<": ratio < bound}[op]


def main():
    parser = argparse.ArgumentParser(description="fiber vs multiprocessing benchmarks")
    parser.add_argument("--build-dir", default=os.environ.get("FIBER_BUILD_DIR",
                                                              os.path.join(HERE, "..", "build")))
    parser.add_argument("--bench-dir", default=None,
                        help="directory holding bench-pool (default: BUILD/bench)")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (rough figures)")
    args = parser.parse_args()

    bench_dir = args.bench_dir or os.path.join(args.build_dir, "bench")
    bench_pool = os.path.join(bench_dir, "bench-pool")
    if not os.access(bench_pool, os.X_OK):
        raise SystemExit(f"run.py: {bench_pool} not found: build first "
                         f"(meson setup BUILD && ninja -C BUILD), then pass --build-dir BUILD "
                         f"(or --bench-dir DIR)")
    peers = os.path.join(HERE, "peers.py")
    quick = ["--quick"] if args.quick else []

    if not args.json:
        print("running fiber (bench-pool) …", file=sys.stderr)
    fiber = run_json([bench_pool, "--json"] + quick, "bench-pool")
    fiber_rss = run_json([bench_pool, "--json", "--rss", str(RSS_ITEMS)], "bench-pool --rss")
    if not args.json:
        print("running multiprocessing and concurrent.futures (peers.py) …", file=sys.stderr)
    py = run_json([PYTHON, peers, "--json"] + quick, "peers.py")
    py_rss = run_json([PYTHON, peers, "--json", "--rss", str(RSS_ITEMS)], "peers.py --rss")

    mp = py["multiprocessing"]
    cf = py["concurrent_futures"]
    rows = []
    for key, label, unit, higher_better in ROWS:
        f = fiber[key]["value"]
        m = mp[key]["value"]
        c = cf[key]["value"]
        rows.append({
            "key": key, "label": label, "unit": unit,
            "fiber": f, "multiprocessing": m, "concurrent_futures": c,
            "ratio": (f / m) if m else None, "higher_is_better": higher_better,
        })
    proc_fiber = fiber["process_start"]["value"]
    proc_fork = py["process"]["fork"]["value"]
    proc_spawn = py["process"]["spawn"]["value"]
    rows.append({
        "key": "process_start", "label": "process start + join", "unit": "ms",
        "fiber": proc_fiber, "multiprocessing": proc_fork, "concurrent_futures": None,
        "multiprocessing_spawn": proc_spawn,
        "ratio": proc_fiber / proc_fork if proc_fork else None, "higher_is_better": False,
    })
    zmq = fiber.get("apply_sync_zmq")
    if zmq is not None:
        # The same synchronous apply with the workers on ZeroMQ ipc://
        # (transport "zmq") instead of the unix socket: why local pools
        # use the socket.
        rows.append({
            "key": "apply_sync_zmq", "label": "apply, sync, zmq ipc", "unit": "µs",
            "fiber": zmq["value"], "multiprocessing": mp["apply_sync"]["value"],
            "concurrent_futures": None,
            "ratio": zmq["value"] / mp["apply_sync"]["value"] if mp["apply_sync"]["value"] else None,
            "higher_is_better": False,
        })
    rss_fiber = fiber_rss["peak_rss_kib"] / 1024.0
    rss_mp = py_rss["peak_rss_kib"] / 1024.0
    rows.append({
        "key": "rss", "label": "peak RSS, map of 1e6 ints", "unit": "MiB",
        "fiber": rss_fiber, "multiprocessing": rss_mp, "concurrent_futures": None,
        "ratio": rss_fiber / rss_mp if rss_mp else None, "higher_is_better": False,
    })

    targets = {}
    for row in rows:
        if row["key"] in TARGETS:
            value = row["fiber"] if row["key"] == "rss" else row["ratio"]
            targets[row["key"]] = {
                "description": TARGETS[row["key"]][0],
                "value": value,
                "met": check(row["key"], value),
            }

    result = {
        "workers": fiber["workers"],
        "python": py["python"],
        "cpus": os.cpu_count(),
        "quick": args.quick,
        "rows": rows,
        "targets": targets,
        "raw": {"fiber": fiber, "fiber_rss": fiber_rss, "peers": py, "peers_rss": py_rss},
    }

    if args.json:
        print(json.dumps(result, indent=2))
        return 0

    print()
    print(f"fiber-glib vs Python {py['python']} — {fiber['workers']} workers, identity task, "
          f"{os.cpu_count()} CPUs{' (quick run)' if args.quick else ''}")
    print("fiber: process pool + fiber.echo;  mp: multiprocessing.Pool (fork);  "
          "cf: ProcessPoolExecutor (fork)")
    print()
    header = f"{'benchmark':<28} {'unit':<8} {'fiber':>9} {'mp':>9} {'cf':>9} {'fiber/mp':>9}   target"
    print(header)
    print("-" * (len(header) + 14))
    for row in rows:
        ratio = row["ratio"]
        ratio_s = "–" if ratio is None else f"{ratio:.2f}×"
        target = targets.get(row["key"])
        target_s = ""
        if target is not None:
            mark = {True: "met", False: "MISSED", None: "?"}[target["met"]]
            op, bound = TARGETS[row["key"]][1], TARGETS[row["key"]][2]
            if row["key"] == "rss":
                target_s = f"{op.replace('<', '< ')}{bound:.0f} MiB  {mark}"
            else:
                target_s = f"{op.replace('>=', '≥ ').replace('<=', '≤ ')}{bound:g}×  {mark}"
        print(f"{row['label']:<28} {row['unit']:<8} {fmt(row['fiber'], row['unit']):>9} "
              f"{fmt(row['multiprocessing'], row['unit']):>9} "
              f"{fmt(row['concurrent_futures'], row['unit']):>9} {ratio_s:>9}   {target_s}")
    print()
    print(f"mp process start + join with spawn: {proc_spawn:.1f} ms "
          f"(fiber/spawn {proc_fiber / proc_spawn:.2f}×)")
    first = fiber.get("process_first")
    if first is not None:
        print(f"fiber's first process start + join (it also starts the fork server): "
              f"{first['value']:.1f} ms; the row is the mean over {fiber['process_start']['n']}")
    if zmq is not None:
        unix_us = fiber["apply_sync"]["value"]
        print(f"sync apply: unix vs zmq ipc: {unix_us:.1f} µs vs {zmq['value']:.1f} µs "
              f"(zmq/unix {zmq['value'] / unix_us:.2f}×; transport \"unix\" is the default)")
    print("cf map with the automatic chunksize is Executor.map's default, chunksize 1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
