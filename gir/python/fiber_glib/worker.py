# fiber_glib.worker — the Python worker process of Fiber pools
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Worker entry point: ``python3 -m fiber_glib.worker [PREPARATION]``.

Pools created from Python set this command as their ``worker-command``.
The module registers the ``python.*`` tasks, prepares the interpreter like
multiprocessing's spawn (the parent's ``sys.path``, working directory and
main module, passed base64-encoded as the first argument or in
``FIBER_PY_PREPARATION``) and then calls ``Fiber.init()``: the C worker
runtime connects to the pool, serves tasks on this (main) thread and exits
the process when the pool shuts it down.
"""

import os
import signal
import sys

from fiber_glib import _common, tasks


def _flush_stdio():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def main(argv=None):
    if argv is None:
        argv = sys.argv
    prep = None
    if len(argv) > 1 and argv[1]:
        prep = argv[1]
    elif os.environ.get(_common.ENV_PREPARATION):
        prep = os.environ[_common.ENV_PREPARATION]
    os.environ.pop(_common.ENV_PREPARATION, None)

    # Between tasks a SIGINT (pool.interrupt()) must not kill the worker;
    # while a task runs the task wrapper turns it into KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    tasks.register_worker_tasks()
    tasks._signals.worker = True
    if prep:
        _common.prepare(_common.decode_preparation(prep))

    from gi.repository import Fiber

    try:
        # argv is how this program re-executes itself for a Fiber.Process
        # started by a task; the trailing None ends the array for C code
        # that expects a NULL-terminated argv.
        Fiber.init([sys.executable, "-m", "fiber_glib.worker", prep or "", None])
    finally:
        # fiber_init() exits the process from C once the worker is done:
        # Python's own exit handlers do not run, so flush now.
        _flush_stdio()
    sys.stderr.write("fiber_glib.worker: not started by a Fiber pool or process\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
