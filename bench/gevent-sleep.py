#!/usr/bin/python3
# gevent-sleep.py — gevent's side of bench-coroutine: N greenlets each
# gevent.sleep(S) (gevent.spawn + joinall), and greenlet switches through
# gevent.sleep(0).  Prints one JSON line.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   /usr/bin/python3 bench/gevent-sleep.py [TASKS [SECONDS [YIELDS]]]

import json
import sys
import time

import gevent


def sleepers(n, seconds):
    start = time.monotonic()
    gevent.joinall([gevent.spawn(gevent.sleep, seconds) for _ in range(n)])
    return time.monotonic() - start


def yielder(n):
    for _ in range(n):
        gevent.sleep(0)


def yields(n, greenlets=2):
    start = time.monotonic()
    gevent.joinall([gevent.spawn(yielder, n) for _ in range(greenlets)])
    return greenlets * n / (time.monotonic() - start)


def main():
    tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 0.2
    n_yields = int(sys.argv[3]) if len(sys.argv) > 3 else 200000
    sleepers(100, 0.001)    # warm up the hub
    elapsed = sleepers(tasks, seconds)
    print(json.dumps({
        "gevent": gevent.__version__,
        "tasks": tasks,
        "sleep": seconds,
        "seconds": elapsed,
        "yields_per_s": yields(n_yields),
    }))


if __name__ == "__main__":
    main()
