# fiber_glib.pytest_plugin — Fiber pool types for pypushflow's test suite
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""pytest plugin: ``pytest -p fiber_glib.pytest_plugin …``.

pypushflow's concurrency tests list the pool types when their modules are
imported (``tests/concurrent/utils.py: POOLS``), so the Fiber types must be
in ``pypushflow.concurrent.factory._POOLS`` before collection: a ``-p``
plugin is loaded before any test module.  Select one type with
``-k fiber-process`` and so on.

pypushflow's suite skips some nested task types for its own pool types
(``tests/concurrent/filter_combinations.py``) and runs every task type for
a name it does not know.  The plugin applies the skips of the matching
pypushflow type to each Fiber type, and nothing more:

* ``bpool`` (a billiard pool started inside the task) "hangs sometimes" for
  pypushflow's ``thread``, ``process`` and ``ndprocess`` pools.  It does
  here too, for the same reason: billiard forks its workers from a process
  that has other threads (a thread pool's threads, the worker runtime's
  socket and watchdog threads), and the forked child can inherit a lock
  held by one of them.  The same task under a plain
  :class:`concurrent.futures.ThreadPoolExecutor` hangs as well.
"""

import pytest

from fiber_glib import pushflow

REGISTERED = pushflow.register()

# Fiber pool type -> pypushflow's own pool type whose filters apply.  The
# coroutine pool runs Python callables to completion on its scheduler
# thread (never on a coroutine stack), so it behaves as the thread pool.
_PUSHFLOW_EQUIVALENT = {
    "fiber-thread": "thread",
    "fiber-coroutine": "thread",
    "fiber-process": "process",
    "fiber-ndprocess": "ndprocess",
    "fiber-remote": "process",
}

# (pypushflow type, task name) -> reason, as in filter_combinations.py
# (without gevent monkey patching, which these runs do not use).
_SKIPS = {
    ("thread", "bpool"): "hangs sometimes",
    ("process", "bpool"): "hangs sometimes",
    ("ndprocess", "bpool"): "hangs sometimes",
}


def pytest_report_header(config):
    return "fiber-glib pypushflow pool types: " + ", ".join(REGISTERED)


def pytest_collection_modifyitems(config, items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None:
            continue
        pool_type = callspec.params.get("pool_type")
        task_name = callspec.params.get("task_name")
        equivalent = _PUSHFLOW_EQUIVALENT.get(pool_type)
        reason = _SKIPS.get((equivalent, task_name))
        if reason is not None:
            item.add_marker(pytest.mark.skip(
                reason="%s (skipped by pypushflow for its %r pool)" % (reason, equivalent)))
