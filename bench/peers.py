#!/usr/bin/python3
# peers.py — Python's side of the pool benchmarks (bench/run.py)
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The same figures as bench-pool.c, for multiprocessing.Pool and
# concurrent.futures.ProcessPoolExecutor (fork context, identity task), and
# multiprocessing.Process start + join (fork and spawn).  With --rss N: the
# peak RSS of this process after multiprocessing.Pool.map over N integers.

import argparse
import json
import multiprocessing
import platform
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor

SIZES = {
    "map_cs1": 20000,
    "apply_async": 20000,
    "apply_sync": 3000,
    "map_default": 200000,
    "process_fork": 30,
    "process_spawn": 10,
}


def identity(x):
    return x


def noop():
    pass


def figure(value, unit, n):
    return {"value": value, "unit": unit, "n": n}


def rate(n, seconds):
    return n / seconds if seconds > 0 else float("inf")


def bench_mp_pool(ctx, workers, sizes):
    out = {}
    t0 = time.perf_counter()
    with ctx.Pool(workers) as pool:
        pool.apply(identity, (0,))
        out["pool_start"] = figure((time.perf_counter() - t0) * 1e3, "ms", 1)
        pool.map(identity, range(200), chunksize=1)  # warm-up

        n = sizes["map_cs1"]
        t = time.perf_counter()
        assert pool.map(identity, range(n), chunksize=1) == list(range(n))
        out["map_cs1"] = figure(rate(n, time.perf_counter() - t), "items/s", n)

        n = sizes["apply_async"]
        t = time.perf_counter()
        results = [pool.apply_async(identity, (i,)) for i in range(n)]
        assert [r.get() for r in results] == list(range(n))
        out["apply_async"] = figure(rate(n, time.perf_counter() - t), "items/s", n)

        n = sizes["apply_sync"]
        t = time.perf_counter()
        for i in range(n):
            pool.apply(identity, (i,))
        out["apply_sync"] = figure((time.perf_counter() - t) / n * 1e6, "us", n)

        n = sizes["map_default"]
        t = time.perf_counter()
        assert len(pool.map(identity, range(n))) == n
        out["map_default"] = figure(rate(n, time.perf_counter() - t), "items/s", n)
    return out


def bench_executor(ctx, workers, sizes):
    out = {}
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
        ex.submit(identity, 0).result()
        out["pool_start"] = figure((time.perf_counter() - t0) * 1e3, "ms", 1)
        list(ex.map(identity, range(200)))  # warm-up

        n = sizes["map_cs1"]
        t = time.perf_counter()
        assert list(ex.map(identity, range(n), chunksize=1)) == list(range(n))
        out["map_cs1"] = figure(rate(n, time.perf_counter() - t), "items/s", n)

        n = sizes["apply_async"]
        t = time.perf_counter()
        futures = [ex.submit(identity, i) for i in range(n)]
        assert [f.result() for f in futures] == list(range(n))
        out["apply_async"] = figure(rate(n, time.perf_counter() - t), "items/s", n)

        n = sizes["apply_sync"]
        t = time.perf_counter()
        for i in range(n):
            ex.submit(identity, i).result()
        out["apply_sync"] = figure((time.perf_counter() - t) / n * 1e6, "us", n)

        # Executor.map's default chunksize is 1: a default-chunksize map of
        # the large size would only repeat map_cs1 for minutes.
        n = sizes["map_cs1"]
        t = time.perf_counter()
        assert len(list(ex.map(identity, range(n)))) == n
        out["map_default"] = figure(rate(n, time.perf_counter() - t), "items/s", n)
    return out


def bench_process(method, n):
    ctx = multiprocessing.get_context(method)
    t = time.perf_counter()
    for _ in range(n):
        p = ctx.Process(target=noop)
        p.start()
        p.join()
        assert p.exitcode == 0
    return figure((time.perf_counter() - t) / n * 1e3, "ms", n)


def run_rss(n, workers):
    t = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        assert len(pool.map(identity, range(n))) == n
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"items": n, "peak_rss_kib": rss, "seconds": time.perf_counter() - t}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--workers", "-j", type=int, default=2)
    parser.add_argument("--rss", type=int, default=0, metavar="N",
                        help="only map N integers and report the peak RSS")
    args = parser.parse_args()

    if args.rss > 0:
        out = run_rss(args.rss, args.workers)
        print(json.dumps(out) if args.json else
              f"map of {args.rss} integers: peak RSS {out['peak_rss_kib'] / 1024:.1f} MiB")
        return 0

    sizes = {k: max(1, v // 5) if args.quick else v for k, v in SIZES.items()}
    fork = multiprocessing.get_context("fork")
    out = {
        "python": platform.python_version(),
        "workers": args.workers,
        "multiprocessing": bench_mp_pool(fork, args.workers, sizes),
        "concurrent_futures": bench_executor(fork, args.workers, sizes),
        "process": {
            "fork": bench_process("fork", sizes["process_fork"]),
            "spawn": bench_process("spawn", sizes["process_spawn"]),
        },
    }
    if args.json:
        print(json.dumps(out))
    else:
        for peer in ("multiprocessing", "concurrent_futures"):
            print(peer)
            for key, fig in out[peer].items():
                print(f"  {key:14} {fig['value']:12.1f} {fig['unit']}")
        for method, fig in out["process"].items():
            print(f"Process start+join ({method}): {fig['value']:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
