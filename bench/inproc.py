#!/usr/bin/python3
# inproc.py — the in-process pools' benchmarks next to their peers, in one
# run: prints the figures, the ratios and whether the targets were met (or
# JSON with --json).
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   /usr/bin/python3 bench/inproc.py --build-dir BUILD [--json] [--quick]
#                                    [--json-file PATH]
#
#  thread  the `thread` pool (2 threads) running fiber.noop — map with
#          chunksize 1, apply_async ×N, map with the automatic chunksize —
#          next to a raw GThreadPool (2 threads) doing the same noop work
#          (bench-inproc --only thread).  Target: at least half of raw.
#  switch  the coroutine context switch, asm and ucontext: ns per switch of
#          a resume/suspend pair, and fiber_yield () calls per second through
#          the scheduler with 2 coroutines (bench-inproc --only switch), next
#          to gevent.sleep (0) between 2 greenlets.  Targets: a switch under
#          20 ns; 5 M switches/s, taken as fiber_yield () calls per second
#          (each hands the thread from one coroutine to the next).
#  sleep   10,000 tasks each sleeping 0.2 s: the `coroutine` pool (one
#          scheduler thread) with fiber.sleep next to gevent (gevent.spawn +
#          gevent.sleep, bench/gevent-sleep.py), runs interleaved; the ratio
#          is fiber's wall time over gevent's (below 1: fiber is faster).

import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"

# key: (description, comparison, bound)
TARGETS = {
    "thread_map_cs1": ("thread pool map(chunksize=1) ≥ 0.5× raw GThreadPool", ">=", 0.5),
    "thread_apply_async": ("thread pool apply_async ×N ≥ 0.5× raw GThreadPool", ">=", 0.5),
    "switch_ns": ("asm context switch (resume/suspend) < 20 ns", "<", 20.0),
    "yields_per_s": ("≥ 5 M switches/s (fiber_yield, 2 coroutines, asm)", ">=", 5e6),
    "sleep_bound": ("10,000 × 0.2 s sleeps on 1 thread well under 2 s (< 1 s)", "<", 1.0),
}


def run_json(argv, what):
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"inproc.py: {what} failed (exit status {proc.returncode})")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if not lines:
        raise SystemExit(f"inproc.py: {what} printed nothing")
    return json.loads(lines[-1])


def have_gevent():
    proc = subprocess.run([PYTHON, "-c", "import gevent"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, check=False)
    return proc.returncode == 0


def check(key, value):
    if value is None:
        return None
    _, op, bound = TARGETS[key]
    return {">=": value >= bound, "<": value < bound}[op]


def rate(value):
    if value is None:
        return "–"
    if value >= 1e6:
        return f"{value / 1e6:.2f} M/s"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k/s"
    return f"{value:.0f} /s"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(value):
    return "–" if value is None else f"{value:.2f}×"


def main():
    parser = argparse.ArgumentParser(
        description="In-process pool benchmarks (thread, coroutine) next to their peers.")
    parser.add_argument("--build-dir", default=os.path.join(HERE, "..", "build"),
                        help="meson build directory (default: build)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--json-file", metavar="PATH",
                        help="also write the JSON of this run to PATH")
    args = parser.parse_args()

    exe = os.path.join(args.build_dir, "bench", "bench-inproc")
    if not os.access(exe, os.X_OK):
        raise SystemExit(f"inproc.py: {exe} is not built (ninja -C {args.build_dir})")
    quick = ["--quick"] if args.quick else []
    tasks, seconds = 10000, 0.2
    started = time.monotonic()
    load_before = os.getloadavg()[0]

    thread = run_json([exe, "--json", "--only", "thread"] + quick, "bench-inproc thread")["thread"]
    switch = run_json([exe, "--json", "--only", "switch"] + quick, "bench-inproc switch")["switch"]

    # sleep: fiber and gevent alternately, best of each
    gevent_ok = have_gevent()
    fiber_runs, gevent_runs = [], []
    for _ in range(1 if args.quick else 3):
        fiber_runs.append(run_json([exe, "--json", "--only", "sleep", "--quick",
                                    "--tasks", str(tasks), "--seconds", str(seconds)],
                                   "bench-inproc sleep")["sleep"])
        if gevent_ok:
            gevent_runs.append(run_json([PYTHON, os.path.join(HERE, "gevent-sleep.py"),
                                         str(tasks), str(seconds)], "gevent-sleep.py"))
    fiber_sleep = {
        "tasks": tasks,
        "sleep": seconds,
        "map_s": min(r["map_s"] for r in fiber_runs),
        "apply_async_s": min(r["apply_async_s"] for r in fiber_runs),
        "runs": len(fiber_runs),
    }
    gevent = None
    if gevent_runs:
        gevent = {
            "version": gevent_runs[0]["gevent"],
            "seconds": min(r["seconds"] for r in gevent_runs),
            "yields_per_s": max(r["yields_per_s"] for r in gevent_runs),
            "runs": len(gevent_runs),
        }

    asm = switch.get("asm")
    uc = switch.get("ucontext")
    gevent_s = gevent["seconds"] if gevent else None
    gevent_y = gevent["yields_per_s"] if gevent else None
    ratios = {
        "thread_map_cs1": ratio(thread["map_cs1"], thread["raw_threadpool"]),
        "thread_apply_async": ratio(thread["apply_async"], thread["raw_threadpool"]),
        "thread_map_default": ratio(thread["map_default"], thread["raw_threadpool"]),
        "sleep_map_vs_gevent": ratio(fiber_sleep["map_s"], gevent_s),
        "sleep_apply_async_vs_gevent": ratio(fiber_sleep["apply_async_s"], gevent_s),
        "sleep_overhead_vs_gevent": ratio(fiber_sleep["map_s"] - seconds,
                                          gevent_s - seconds if gevent_s else None),
        "yields_asm_vs_gevent": ratio(asm["yields_per_s_2"] if asm else None, gevent_y),
        "yields_ucontext_vs_gevent": ratio(uc["yields_per_s_2"] if uc else None, gevent_y),
    }
    values = {
        "thread_map_cs1": ratios["thread_map_cs1"],
        "thread_apply_async": ratios["thread_apply_async"],
        "switch_ns": asm["resume_suspend_ns"] if asm else None,
        "yields_per_s": asm["yields_per_s_2"] if asm else None,
        "sleep_bound": fiber_sleep["map_s"],
    }
    targets = {key: {"description": TARGETS[key][0], "value": values[key],
                     "bound": TARGETS[key][2], "met": check(key, values[key])}
               for key in TARGETS}

    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "machine": platform.machine(),
                    "loadavg_1min": [load_before, os.getloadavg()[0]]},
        "thread": thread,
        "switch": switch,
        "sleep": {"fiber": fiber_sleep, "gevent": gevent},
        "ratios": ratios,
        "targets": targets,
        "seconds": time.monotonic() - started,
    }

    if args.json_file:
        with open(args.json_file, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0

    print(f"In-process pools, {os.cpu_count()} CPUs{' (quick)' if args.quick else ''}; "
          f"1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
          "(other processes skew every figure)")
    print()
    print(f"thread pool, 2 threads, fiber.noop × {thread['n']:.0f} (best of the rounds)")
    print(f"  {'raw GThreadPool push':34} {rate(thread['raw_threadpool']):>12}")
    for key, label in (("map_cs1", "map, chunksize 1"),
                       ("apply_async", "apply_async ×N, then get"),
                       ("map_default", "map, automatic chunksize")):
        print(f"  {label:34} {rate(thread[key]):>12}   "
              f"{fmt_ratio(ratio(thread[key], thread['raw_threadpool']))} raw")
    print()
    print("coroutine context switch")
    print(f"  {'':12} {'bare ns':>9} {'switch ns':>10} {'switches/s':>12} "
          f"{'yields/s (2)':>13} {'yields/s (100)':>15}")
    for kind in ("asm", "ucontext"):
        k = switch.get(kind)
        if k is None:
            print(f"  {kind:12} not built on this machine")
            continue
        print(f"  {kind:12} {k['bare_ns']:9.1f} {k['resume_suspend_ns']:10.1f} "
              f"{rate(k['switches_per_s']):>12} {rate(k['yields_per_s_2']):>13} "
              f"{rate(k['yields_per_s_100']):>15}")
    if gevent:
        print(f"  {'gevent':12} {'':9} {'':10} {'':12} {rate(gevent_y):>13}   "
              f"(gevent.sleep (0), 2 greenlets)")
        print(f"  fiber_yield vs gevent.sleep (0): asm {fmt_ratio(ratios['yields_asm_vs_gevent'])}, "
              f"ucontext {fmt_ratio(ratios['yields_ucontext_vs_gevent'])}")
    print()
    print(f"{tasks:,} tasks each sleeping {seconds} s (wall seconds, best of "
          f"{fiber_sleep['runs']})")
    print(f"  {'fiber coroutine pool, map':34} {fiber_sleep['map_s']:8.3f} s")
    print(f"  {'fiber coroutine pool, apply_async':34} {fiber_sleep['apply_async_s']:8.3f} s")
    if gevent:
        print(f"  {'gevent ' + gevent['version'] + ', spawn + joinall':34} {gevent_s:8.3f} s")
        print(f"  ratio fiber/gevent: map {fmt_ratio(ratios['sleep_map_vs_gevent'])}, "
              f"apply_async {fmt_ratio(ratios['sleep_apply_async_vs_gevent'])}; "
              f"overhead beyond the {seconds} s sleep "
              f"{fmt_ratio(ratios['sleep_overhead_vs_gevent'])}")
    else:
        print("  gevent: not installed (python3-gevent), no ratio")
    print()
    print("targets")
    for key, target in targets.items():
        met = {True: "met", False: "MISSED", None: "n/a"}[target["met"]]
        value = target["value"]
        shown = "–" if value is None else (rate(value) if key == "yields_per_s" else
                                            f"{value:.3g}")
        print(f"  {met:7} {target['description']}  (measured {shown})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
