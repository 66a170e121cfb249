# gi/overrides/Fiber.py — PyGObject overrides of the Fiber-1.0 namespace
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""multiprocessing-style Python API for Fiber-1.0.

``Fiber.Pool`` and ``Fiber.Process`` keep being the GObject classes of the
C library (every method of the C API stays reachable, a pool is still a
``GObject.Object``), with constructors and methods shaped like
:class:`multiprocessing.pool.Pool` and :class:`multiprocessing.Process`:

    from gi.repository import Fiber

    def square(x):
        return x * x

    if __name__ == "__main__":
        with Fiber.Pool(4) as pool:
            print(pool.map(square, range(10)))

The implementation lives in the ``fiber_glib`` package.
"""

from ..module import get_introspection_module
from ..overrides import override

Fiber = get_introspection_module("Fiber")

from fiber_glib import pool as _pool  # noqa: E402
from fiber_glib import process as _process  # noqa: E402

__all__ = []


class Pool(_pool.PoolMixin, Fiber.Pool):
    __doc__ = _pool.__doc__


Pool = override(Pool)
__all__.append("Pool")


class Process(_process.ProcessMixin, Fiber.Process):
    __doc__ = _process.__doc__


Process = override(Process)
__all__.append("Process")

# Fiber.ApplyResult and Fiber.MapResult stay the C classes; the Python
# results are AsyncResult (multiprocessing's name) and IMapIterator.
AsyncResult = _pool.AsyncResult
IMapIterator = _pool.IMapIterator
TimeoutError = _pool.TimeoutError
TaskInterrupted = _pool.TaskInterrupted
WorkerLostError = _pool.WorkerLostError
PoolClosedError = _pool.PoolClosedError
active_children = _process.active_children
current_process = _process.current_process
cpu_count = _process.cpu_count
__all__ += ["AsyncResult", "IMapIterator", "TimeoutError",
            "TaskInterrupted", "WorkerLostError", "PoolClosedError",
            "active_children", "current_process", "cpu_count"]
