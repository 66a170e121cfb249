# fiber_glib.pushflow — Fiber pools as pypushflow pool types
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Pool types for the pypushflow workflow engine.

:func:`register` adds ``fiber-thread``, ``fiber-process``,
``fiber-ndprocess``, ``fiber-coroutine`` and ``fiber-remote`` (the Fiber
pool types available in this process) to
``pypushflow.concurrent.factory._POOLS``, so a workflow selects one with
``pool_type="fiber-process"``::

    import fiber_glib.pushflow
    fiber_glib.pushflow.register()
    workflow.run(in_data, pool_type="fiber-process", max_workers=4)

Each pool honours pypushflow's pool contract: ``apply_async(fn, callback,
error_callback, args, kwargs)`` calls exactly one of the callbacks per task
(on the library's result thread); a task's exception arrives with its own
type and the remote traceback as ``__cause__``; ``close()`` makes later
``apply_async`` raise :class:`RuntimeError`; ``interrupt()`` makes running
tasks fail with ``StopPypushflowTask`` and the pool stays usable.
"""

import threading
from typing import Callable, Optional

__all__ = ["register", "unregister", "POOL_TYPES", "FiberPushflowPool"]

# pypushflow name -> Fiber pool type
POOL_TYPES = {
    "fiber-thread": "thread",
    "fiber-process": "process",
    "fiber-ndprocess": "ndprocess",
    "fiber-coroutine": "coroutine",
    "fiber-remote": "remote",
}

_lingering = set()
_lingering_lock = threading.Lock()


def _base_pool():
    from pypushflow.concurrent.base import BasePool
    return BasePool


def _stop_exception():
    from pypushflow.concurrent.interrupt import StopPypushflowTask
    return StopPypushflowTask


def _task_main():
    # Runs fn in a worker process with SIGINT turned into
    # StopPypushflowTask, exactly as pypushflow's own process pools do.
    from pypushflow.concurrent.interrupt.process import task_main
    return task_main


class FiberPushflowPool:
    """Base of the generated pypushflow pool classes (see :func:`register`)."""

    fiber_pool_type = None

    def __init__(self, max_workers: Optional[int] = None, context=None,
                 pool_type: Optional[str] = None, **kw) -> None:
        from gi.repository import Fiber
        # ``context`` (a multiprocessing start method) does not apply: Fiber
        # workers are always fresh interpreters.  ``pool_type`` is the
        # pypushflow name this class is registered under.
        self._pool = Fiber.Pool(processes=max_workers, pool_type=self.fiber_pool_type)
        self._in_process = self._pool._fiber_state().in_process
        self._closed = False
        self._stop = _stop_exception()
        super().__init__(**kw)

    def close(self):
        if not self._closed:
            self._closed = True
            self._pool.close()

    def join(self, timeout=None) -> bool:
        if not self._pool.is_closed():
            self._pool.close()
        return self._pool.join(timeout)

    def shutdown(self, block: bool = False, timeout=None, interrupt: bool = False) -> None:
        super().shutdown(block=block, timeout=timeout, interrupt=interrupt)
        pool = self._pool
        if block:
            if not pool.join(timeout):
                # Waited long enough: stop what is left.
                pool.terminate()
                pool.join(None)
        else:
            # Let queued work finish in the background, then reap the
            # workers; the pool object stays referenced until then.
            _join_in_background(pool)

    def interrupt(self) -> None:
        self._pool.interrupt()

    def apply_async(self, fn: Callable, callback: Optional[Callable] = None,
                    error_callback: Optional[Callable] = None, args=tuple(),
                    kwargs=None):
        if self._closed:
            raise RuntimeError("the pool is closed")
        if kwargs is None:
            kwargs = dict()
        stop = self._stop

        def on_error(exc):
            if _is_interrupt(exc):
                new = stop(str(exc))
                new.__cause__ = exc
                exc = new
            if error_callback is not None:
                error_callback(exc)

        if self._in_process:
            return self._pool.apply_async(fn, tuple(args), kwargs,
                                          callback, on_error)
        return self._pool.apply_async(_task_main(), (fn,) + tuple(args), kwargs,
                                      callback, on_error)


def _is_interrupt(exc):
    from fiber_glib.pool import TaskInterrupted
    return isinstance(exc, (TaskInterrupted, KeyboardInterrupt))


def _join_in_background(pool):
    def run():
        try:
            pool.join(None)
        finally:
            with _lingering_lock:
                _lingering.discard(thread)

    thread = threading.Thread(target=run, name="fiber-pushflow-join", daemon=True)
    with _lingering_lock:
        _lingering.add(thread)
    thread.start()


def _make_class(name, fiber_type):
    base = _base_pool()
    return type(
        "Fiber%sPool" % fiber_type.capitalize(),
        (FiberPushflowPool, base),
        {"fiber_pool_type": fiber_type, "__module__": __name__,
         "__doc__": "pypushflow pool type %r: a Fiber %r pool." % (name, fiber_type)},
    )


def available_types():
    """The pypushflow names whose Fiber pool type exists in this process."""
    from gi.repository import Fiber
    known = set(Fiber.Pool.list_types())
    return {name: ftype for name, ftype in POOL_TYPES.items() if ftype in known}


def register(names=None):
    """Adds the Fiber pool types to ``pypushflow.concurrent.factory._POOLS``.

    @names limits the registration to these pypushflow names; by default
    every Fiber type that exists in this process is added.  Returns the
    names added.
    """
    from pypushflow.concurrent import factory

    types = available_types()
    if names is not None:
        types = {n: t for n, t in types.items() if n in names}
    for name, fiber_type in types.items():
        if name not in factory._POOLS or factory._POOLS[name] is None:
            factory._POOLS[name] = _make_class(name, fiber_type)
    return sorted(types)


def unregister():
    from pypushflow.concurrent import factory
    for name in POOL_TYPES:
        factory._POOLS.pop(name, None)
