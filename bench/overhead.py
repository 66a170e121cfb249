#!/usr/bin/python3
# overhead.py — Fiber's framework-overhead test, Fiber.Pool next to
# multiprocessing.Pool
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   /usr/bin/python3 bench/overhead.py [--build-dir BUILD] [--pool-type T]
#                                      [--durations 1,0.1,0.01,0.001] [--json]
#
# The test of Fiber's publication: 5 workers; tasks that sleep for D
# seconds (1 s, 100 ms, 10 ms, 1 ms), 5/D tasks submitted in batches of 5
# apply_async, each batch waited for before the next one is submitted.
# The ideal total is 1 s for every D: what is above it is the framework's
# overhead (task round trip, wake-ups, scheduling).  Fiber's publication:
# multiprocessing and Fiber ~1.9 s at 1 ms tasks, Ray ~4.8 s, IPyParallel
# ~47 s.  Pools are started (and warmed up) before the clock starts.
#
# --build-dir runs against an uninstalled build (see bench-python.py).

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(HERE)
WORKERS = 5
BATCH = 5


def sleep_worker(duration):
    time.sleep(duration)
    return duration


def reexec_with_build_dir(argv, build_dir):
    if os.environ.get("FIBER_BENCH_ENV_SET") == "1":
        return
    build_dir = os.path.abspath(build_dir)
    env = dict(os.environ)
    env["GI_TYPELIB_PATH"] = os.path.join(build_dir, "gir")
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (os.path.join(build_dir, "plugin"), env.get("LD_LIBRARY_PATH")) if p)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (os.path.join(SOURCE_ROOT, "gir", "python"), env.get("PYTHONPATH")) if p)
    env["FIBER_WORKER"] = os.path.join(build_dir, "plugin", "worker", "fiber-worker")
    env["GSETTINGS_SCHEMA_DIR"] = os.path.join(build_dir, "schemas")
    env["GSETTINGS_BACKEND"] = "memory"
    env["FIBER_BENCH_ENV_SET"] = "1"
    os.execve(sys.executable, [sys.executable] + argv, env)


def run_overhead(pool, duration):
    n_tasks = int(round(WORKERS / duration))
    t0 = time.perf_counter()
    for _ in range(n_tasks // BATCH):
        results = [pool.apply_async(sleep_worker, (duration,)) for _ in range(BATCH)]
        for r in results:
            r.get()
    return n_tasks, time.perf_counter() - t0


def measure(make_pool, durations):
    out = {}
    with make_pool() as pool:
        # every worker up and importing this script before the clock starts
        pool.map(sleep_worker, [0.0] * (WORKERS * 4), chunksize=1)
        for d in durations:
            n, elapsed = run_overhead(pool, d)
            out[d] = {"tasks": n, "seconds": elapsed}
    return out


def main(argv):
    ap = argparse.ArgumentParser(description="Fiber's framework-overhead test")
    ap.add_argument("--build-dir", help="run against this uninstalled build")
    ap.add_argument("--pool-type", default="process", help="Fiber pool type (default process)")
    ap.add_argument("--durations", default="1,0.1,0.01,0.001",
                    help="task durations in seconds, comma-separated")
    ap.add_argument("--json", action="store_true", help="print JSON")
    args = ap.parse_args(argv[1:])
    if args.build_dir:
        reexec_with_build_dir(argv, args.build_dir)

    import gi
    gi.require_version("Fiber", "1.0")
    from gi.repository import Fiber

    durations = [float(x) for x in args.durations.split(",") if x]
    fiber = measure(lambda: Fiber.Pool(WORKERS, pool_type=args.pool_type), durations)
    mp = measure(lambda: multiprocessing.Pool(WORKERS), durations)

    rows = []
    for d in durations:
        rows.append({
            "task_seconds": d,
            "tasks": fiber[d]["tasks"],
            "ideal_seconds": fiber[d]["tasks"] / WORKERS * d,
            "fiber_seconds": fiber[d]["seconds"],
            "multiprocessing_seconds": mp[d]["seconds"],
        })
    report = {"python": platform.python_version(), "workers": WORKERS, "batch": BATCH,
              "fiber_pool_type": args.pool_type,
              "mp_start_method": multiprocessing.get_start_method(), "rows": rows}
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print("framework overhead: %d workers, batches of %d apply_async, Fiber.Pool(%s) vs "
          "multiprocessing.Pool (%s)" % (WORKERS, BATCH, args.pool_type,
                                         report["mp_start_method"]))
    print("%10s %7s %8s %12s %16s %12s" % ("task", "tasks", "ideal", "Fiber.Pool",
                                           "multiprocessing", "Fiber/ideal"))
    for row in rows:
        print("%8.0fms %7d %7.2fs %11.3fs %15.3fs %11.1f%%"
              % (row["task_seconds"] * 1e3, row["tasks"], row["ideal_seconds"],
                 row["fiber_seconds"], row["multiprocessing_seconds"],
                 (row["fiber_seconds"] / row["ideal_seconds"] - 1) * 100))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
