# fiber_glib.errors — exceptions of the Python API
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import multiprocessing

__all__ = ["TimeoutError", "TaskInterrupted", "WorkerLostError", "PoolClosedError"]

#: Raised by ``AsyncResult.get(timeout)`` and ``IMapIterator.next(timeout)``.
TimeoutError = multiprocessing.TimeoutError


class TaskInterrupted(Exception):
    """A task stopped by ``Pool.interrupt()``."""


class WorkerLostError(Exception):
    """The worker running a task was lost more often than ``max-retries`` allows."""


class PoolClosedError(ValueError):
    """The pool was closed or terminated before the task could run."""
