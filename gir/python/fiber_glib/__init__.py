# fiber_glib — Python side of fiber-glib
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Python runtime of fiber-glib, beside the ``gi.overrides.Fiber`` module.

Most programs only need ``from gi.repository import Fiber``: the overrides
give ``Fiber.Pool``, ``Fiber.Process`` and friends the API of
:mod:`multiprocessing`.  This package holds their implementation and:

* :mod:`fiber_glib.worker` — the worker process (``python3 -m fiber_glib.worker``);
* :mod:`fiber_glib.tasks` — the ``python.*`` Fiber tasks;
* :mod:`fiber_glib.pushflow` — pool types for the pypushflow workflow engine;
* :mod:`fiber_glib.pytest_plugin` — registers them for pypushflow's test suite.
"""

__version__ = "0.1.0"

import gi as _gi

try:
    _gi.require_version("Fiber", "1.0")
except ValueError:  # a different version was required first: theirs wins
    pass


def __getattr__(name):
    # Lazy: importing the package must not load the typelib (the overrides
    # import it while gi.repository.Fiber itself is being set up).
    if name in ("Pool", "Process", "AsyncResult", "TimeoutError",
                "TaskInterrupted", "WorkerLostError", "PoolClosedError",
                "active_children", "current_process", "cpu_count"):
        from gi.repository import Fiber
        return getattr(Fiber, name)
    raise AttributeError("module 'fiber_glib' has no attribute %r" % name)
