#!/usr/bin/python3
# bench-python.py — Fiber.Pool (process) next to multiprocessing.Pool, from
# Python, with the same Python function in the same run
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   /usr/bin/python3 bench/bench-python.py [--build-dir BUILD] [--workers N]
#                                          [--repeat R] [--quick] [--json]
#
# Figures (identity function defined in this script, integer arguments):
#   map_cs1      pool.map(identity, range(N), chunksize=1)        items/s
#   apply_async  N × pool.apply_async(identity, (i,)), then get() items/s
#   apply_sync   pool.apply(identity, (i,)) one after the other   µs per call
# Each figure is the best of --repeat runs; the ratio is Fiber / mp for
# rates and mp / Fiber for latencies, so a ratio above 1 means Fiber is
# faster.  multiprocessing uses its platform default start method (fork on
# Linux); Fiber's workers are `python3 -m fiber_glib.worker` processes.
#
# --build-dir runs against an uninstalled build: it sets GI_TYPELIB_PATH,
# LD_LIBRARY_PATH, PYTHONPATH (gir/python), FIBER_WORKER and the GSettings
# variables, then re-executes this script.

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(HERE)

SIZES = {"map_cs1": 20000, "apply_async": 20000, "apply_sync": 3000}
QUICK = {"map_cs1": 3000, "apply_async": 3000, "apply_sync": 500}


def identity(x):
    return x


def uninstalled_env(build_dir):
    """The environment of an uninstalled build (as the meson tests use)."""
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
    return env


def reexec_with_build_dir(argv, build_dir):
    if os.environ.get("FIBER_BENCH_ENV_SET") == "1":
        return
    env = uninstalled_env(build_dir)
    os.execve(sys.executable, [sys.executable] + argv, env)


# ---- the three measurements, the same code for both pools ------------------

def measure_map(pool, n):
    items = list(range(n))
    t = time.perf_counter()
    out = pool.map(identity, items, chunksize=1)
    dt = time.perf_counter() - t
    assert out == items
    return n / dt


def measure_apply_async(pool, n):
    t = time.perf_counter()
    results = [pool.apply_async(identity, (i,)) for i in range(n)]
    out = [r.get() for r in results]
    dt = time.perf_counter() - t
    assert out == list(range(n))
    return n / dt


def measure_apply_sync(pool, n):
    t = time.perf_counter()
    for i in range(n):
        if pool.apply(identity, (i,)) != i:
            raise AssertionError("wrong result")
    dt = time.perf_counter() - t
    return dt / n * 1e6


MEASURES = [
    ("map_cs1", "map, chunksize 1", "items/s", True, measure_map),
    ("apply_async", "apply_async ×N, then get", "items/s", True, measure_apply_async),
    ("apply_sync", "apply, sync round trip", "µs", False, measure_apply_sync),
]


def run_pool(make_pool, sizes, repeat):
    out = {}
    t0 = time.perf_counter()
    pool = make_pool()
    with pool:
        pool.apply(identity, (0,))
        out["pool_start_ms"] = (time.perf_counter() - t0) * 1e3
        # warm-up: every worker has imported this script and run a task
        pool.map(identity, range(200), chunksize=1)
        for key, _, _, higher, fn in MEASURES:
            values = [fn(pool, sizes[key]) for _ in range(repeat)]
            out[key] = max(values) if higher else min(values)
    return out


def main(argv):
    ap = argparse.ArgumentParser(
        description="Fiber.Pool (process) next to multiprocessing.Pool, same function, same run")
    ap.add_argument("--build-dir", help="run against this uninstalled build")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="smaller sizes")
    ap.add_argument("--json", action="store_true", help="print JSON")
    args = ap.parse_args(argv[1:])
    if args.build_dir:
        reexec_with_build_dir(argv, args.build_dir)

    import gi
    gi.require_version("Fiber", "1.0")
    from gi.repository import Fiber

    sizes = QUICK if args.quick else SIZES
    fiber = run_pool(lambda: Fiber.Pool(args.workers, pool_type="process"),
                     sizes, args.repeat)
    mp = run_pool(lambda: multiprocessing.Pool(args.workers), sizes, args.repeat)

    report = {
        "python": platform.python_version(),
        "workers": args.workers,
        "mp_start_method": multiprocessing.get_start_method(),
        "sizes": sizes,
        "repeat": args.repeat,
        "figures": {},
    }
    for key, label, unit, higher, _ in MEASURES:
        f, m = fiber[key], mp[key]
        ratio = f / m if higher else m / f
        report["figures"][key] = {"label": label, "unit": unit, "fiber": f,
                                  "multiprocessing": m, "ratio": ratio,
                                  "fiber_not_slower": ratio >= 1.0}
    report["figures"]["pool_start"] = {"label": "pool start + first apply", "unit": "ms",
                                       "fiber": fiber["pool_start_ms"],
                                       "multiprocessing": mp["pool_start_ms"]}

    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print("Fiber.Pool(process) vs multiprocessing.Pool (%s), %d workers, Python %s, best of %d"
          % (report["mp_start_method"], args.workers, report["python"], args.repeat))
    print("%-28s %14s %16s %8s" % ("", "Fiber.Pool", "multiprocessing", "ratio"))
    for key, label, unit, _, _ in MEASURES:
        fig = report["figures"][key]
        fmt = "%14.0f %16.0f" if unit == "items/s" else "%14.1f %16.1f"
        print(("%-28s " + fmt + " %7.2fx  %s")
              % (label, fig["fiber"], fig["multiprocessing"], fig["ratio"], unit))
    fig = report["figures"]["pool_start"]
    print("%-28s %14.1f %16.1f %8s  ms" % (fig["label"], fig["fiber"], fig["multiprocessing"], ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
