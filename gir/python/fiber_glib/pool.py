# fiber_glib.pool — multiprocessing.Pool API on top of Fiber.Pool
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Python face of :class:`Fiber.Pool`.

``Fiber.Pool(processes=None, initializer=None, initargs=(),
maxtasksperchild=None, pool_type=None)`` creates a pool of any registered
type and gives it the methods of :class:`multiprocessing.pool.Pool`.

How Python callables run depends on where the pool's workers are:

* pools whose workers are processes (``process``, ``ndprocess``,
  ``remote``) run them in ``python3 -m fiber_glib.worker`` processes as the
  task ``python.call`` (or ``python.chunk`` for a chunk of ``map``), with
  the callable and its arguments pickled by reference;
* in-process pools (``thread``, ``coroutine``) call them directly through
  :meth:`Fiber.Pool.apply_func`: nothing is pickled.

Passing a task *name* (a string) instead of a callable runs that registered
Fiber task with :class:`GLib.Variant` arguments, as the C API does, and
returns :class:`GLib.Variant` results.

Callbacks (``callback``/``error_callback``) run exactly once per call on the
library's result thread (the pool's ``result-thread`` property), so no GLib
main loop is needed, as with multiprocessing's result handler.
"""

import ctypes
import itertools
import math
import os
import queue
import sys
import threading

from gi.repository import GLib

from fiber_glib import _common, tasks

__all__ = [
    "PoolMixin", "AsyncResult", "MapResult", "IMapIterator",
    "TimeoutError", "TaskInterrupted", "WorkerLostError", "PoolClosedError",
]

from fiber_glib.errors import TimeoutError, TaskInterrupted, WorkerLostError, \
    PoolClosedError  # noqa: F401 (re-exported)


_UNIT = GLib.Variant("()", ())
_IN_PROCESS_TYPES = frozenset(("thread", "coroutine"))

_gi_module = None


def _gi():
    """The raw introspection module (the C methods, not these overrides)."""
    global _gi_module
    if _gi_module is None:
        from gi.module import get_introspection_module
        _gi_module = get_introspection_module("Fiber")
    return _gi_module


def _timeout_msec(timeout):
    if timeout is None:
        return -1
    if timeout <= 0:
        return 0
    return min(int(math.ceil(timeout * 1000.0)), 2 ** 31 - 1)


def translate_error(error):
    """A Python exception for a GLib.Error coming out of the C layer."""
    if not isinstance(error, GLib.Error):
        return error
    Fiber = _gi()
    if error.domain == GLib.quark_to_string(Fiber.error_quark()):
        code = error.code
        if code == Fiber.Error.TIMEOUT:
            exc = TimeoutError(error.message)
        elif code == Fiber.Error.INTERRUPTED:
            exc = TaskInterrupted(error.message)
        elif code == Fiber.Error.WORKER_LOST:
            exc = WorkerLostError(error.message)
        elif code == Fiber.Error.CLOSED:
            exc = PoolClosedError(error.message)
        else:
            return error
        exc.__cause__ = error
        return exc
    return error


# ---- results --------------------------------------------------------------

class AsyncResult:
    """Like :class:`multiprocessing.pool.AsyncResult`.

    ``fiber_result`` is the underlying :class:`Fiber.ApplyResult` (``None``
    for calls of in-process pools, which complete from Python).
    """

    def __init__(self, pool, callback=None, error_callback=None, decode=None):
        self._pool = pool
        self._callback = callback
        self._error_callback = error_callback
        self._decode = decode
        self._lock = threading.Lock()
        # Only waiters on a callback-driven result need an Event: created
        # on demand (most results are waited for in C).
        self._event = None
        self._done = False       # the outcome is decided (under _lock)
        self._finished = False   # ... and its callback has run (as multiprocessing's ready())
        self._ok = None
        self._value = None
        self.fiber_result = None

    # -- completion (exactly once) --

    def _set(self, ok, value):
        with self._lock:
            if self._done:
                return False
            self._done = True
            self._ok = ok
            self._value = value
        try:
            if ok and self._callback is not None:
                self._callback(value)
            elif not ok and self._error_callback is not None:
                self._error_callback(value)
        except BaseException:
            sys.excepthook(*sys.exc_info())
        finally:
            with self._lock:
                self._finished = True
                event = self._event
            if event is not None:
                event.set()
            self._pool = None
        return True

    def _fetch(self, timeout_msec=0):
        """Completes from the C result, waiting up to @timeout_msec for it
        (in C, with the GIL released); False when it is not ready."""
        try:
            value = self.fiber_result.get(timeout_msec)
        except GLib.Error as e:
            exc = translate_error(e)
            if isinstance(exc, TimeoutError):
                return False
            return self._set(False, exc)
        if self._decode is None:
            return self._set(True, value)
        ok, value = self._decode(value)
        return self._set(ok, value)

    def _on_ready(self, source, res, *user_data):
        self._fetch()

    # -- multiprocessing API --

    def ready(self):
        if self._finished:
            return True
        if self.fiber_result is not None and self._callback is None and \
           self._error_callback is None and self.fiber_result.ready():
            self._fetch()
        return self._finished

    def successful(self):
        if not self.ready():
            raise ValueError("{0!r} not ready".format(self))
        return self._ok

    def wait(self, timeout=None):
        if self._finished:
            return True
        if self.fiber_result is not None and self._callback is None and \
           self._error_callback is None:
            # No callback to wait for: block in C (the GIL is released);
            # one call waits and fetches.
            self._fetch(_timeout_msec(timeout))
            return self._done
        with self._lock:
            if self._finished:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        event.wait(timeout)
        return self._finished

    def get(self, timeout=None):
        if not self.wait(timeout):
            raise TimeoutError
        if self._ok:
            return self._value
        raise self._value

    __class_getitem__ = classmethod(lambda cls, item: cls)


ApplyResult = AsyncResult


class MapResult(AsyncResult):
    """The result of ``map_async``/``starmap_async``: a list in input order."""


def _decode_call(variant):
    return _common.decode_result(_common.result_bytes(variant))


def _decode_chunks(variant):
    """Flattens the ``av`` of chunk results of a map; the first failed
    chunk (in input order) is the map's exception."""
    values = []
    for data in _common.av_to_bytes_list(variant):
        ok, value = _common.decode_result(data)
        if not ok:
            return False, value
        values.extend(value)
    return True, values


class IMapIterator:
    """The iterator of ``imap``/``imap_unordered``; ``next(timeout)`` like
    :class:`multiprocessing.pool.IMapIterator`."""

    def __init__(self, source):
        self._source = source   # generator of (ok, value) or raises
        self._pending = []

    def __iter__(self):
        return self

    def next(self, timeout=None):
        ok, value = self._source(timeout)
        if ok:
            return value
        raise value

    __next__ = next


# ---- the in-process call path ----------------------------------------------

_SetAsyncExc = ctypes.pythonapi.PyThreadState_SetAsyncExc
# The exception is passed as a raw pointer: NULL clears a pending one,
# while a py_object argument would turn None into Py_None, which the
# thread then "raises" (a SystemError) at its next bytecode.
_SetAsyncExc.argtypes = (ctypes.c_ulong, ctypes.c_void_p)
_SetAsyncExc.restype = ctypes.c_int


def _set_async_exc(thread_id, exc_type):
    """Raises @exc_type in thread @thread_id at its next bytecode boundary;
    None withdraws an exception that has not fired yet."""
    # id() is the object's address; exc_type is a class kept alive by its
    # module, and the call takes its own reference.
    _SetAsyncExc(thread_id, id(exc_type) if exc_type is not None else None)


class _InProcessCall:
    """One call of a Python callable in a thread or coroutine pool."""

    __slots__ = ("result", "state", "func", "args", "kwargs", "lock", "thread",
                 "started")

    def __init__(self, state, result, func, args, kwargs):
        self.state = state
        self.result = result
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.lock = threading.Lock()
        self.thread = None
        self.started = False

    def body(self, args, cancellable, *user_data):
        """The FiberTaskFunc run by the pool (any thread)."""
        with self.lock:
            if self.result._done:          # interrupted or terminated first
                return _UNIT
            self.started = True
            self.thread = threading.get_ident()
        ok, value = False, None
        try:
            try:
                value = self.func(*self.args, **self.kwargs)
                ok = True
            except BaseException as e:
                ok, value = False, e
            finally:
                self._leave()
        except BaseException as e:        # an interrupt that fired late
            self._leave()
            if ok:
                ok, value = False, e
        self._complete(ok, value)
        return _UNIT

    def _complete(self, ok, value):
        self.result._set(ok, value)
        with self.state.lock:
            self.state.calls.discard(self)

    def _leave(self):
        while True:
            try:
                with self.lock:
                    if self.thread is not None:
                        # Drop an interrupt that has not fired yet: this
                        # thread is going back to the pool.
                        _set_async_exc(self.thread, None)
                        self.thread = None
                return
            except BaseException:
                continue

    def interrupt(self, exc_type):
        """Fails the call now; a running callable gets @exc_type raised in
        its thread at the next bytecode boundary."""
        with self.lock:
            if self.thread is not None:
                _set_async_exc(self.thread, exc_type)
        self._complete(False, exc_type("task interrupted"))


# ---- the pool --------------------------------------------------------------

class _PoolState:
    """Python-side state of one Fiber.Pool wrapper."""

    def __init__(self, in_process, processes):
        self.in_process = in_process
        self.processes = max(1, processes)
        self.lock = threading.Lock()
        # The _InProcessCall objects not completed yet, held here: when the
        # pool is terminated the C side drops the calls it never ran, and
        # terminate() must still fail their results.
        self.calls = set()
        self.interrupt_exc = TaskInterrupted


def _has_property(obj, name):
    return any(p.name == name for p in obj.list_properties())


def _worker_command():
    return [sys.executable, "-m", "fiber_glib.worker", _common.encode_preparation()]


_PROCESS_POOL_TYPES = {"process": True, "ndprocess": False}   # name -> daemon


def _default_pool_type():
    """FIBER_POOL_TYPE, else the GSettings key default-pool-type, else process
    (the rule of fiber_pool_new())."""
    name = os.environ.get("FIBER_POOL_TYPE")
    if name:
        return name
    from gi.repository import Gio
    source = Gio.SettingsSchemaSource.get_default()
    if source is not None and source.lookup("org.fiberglib.Fiber", True) is not None:
        value = Gio.Settings.new("org.fiberglib.Fiber").get_string("default-pool-type")
        if value:
            return value
    return "process"


def create_pool(pool_type=None, processes=None, initializer=None, initargs=(),
                maxtasksperchild=None, **properties):
    """Creates the C pool of @pool_type with its construct properties;
    process pools get the Python worker as their ``worker-command``."""
    Fiber = _gi()
    tasks.register_tasks()
    # Registers the error quark in this process: the wire decoder keeps a
    # remote FIBER_ERROR code only if the quark already exists here.
    Fiber.error_quark()

    if processes is not None and processes < 1:
        raise ValueError("Number of processes must be at least 1")
    if initializer is not None and not callable(initializer):
        raise TypeError("initializer must be a callable")
    if maxtasksperchild is not None and \
       (not isinstance(maxtasksperchild, int) or maxtasksperchild <= 0):
        raise ValueError("maxtasksperchild must be a positive int or None")

    props = {}
    if processes is not None:
        props["processes"] = int(processes)
    if initializer is not None:
        props["initializer"] = _common.TASK_INIT
        props["initargs"] = _common.pack((initializer, tuple(initargs), {}))
    if maxtasksperchild is not None:
        props["maxtasksperchild"] = maxtasksperchild
    for key, value in properties.items():
        props[key.replace("_", "-")] = value
    name = pool_type if pool_type else _default_pool_type()
    if name == "remote":
        # Remote workers run Python tasks too: the Python worker, as a
        # command line the cluster's nodes can run (same paths).
        props.setdefault("worker-command", _worker_command())

    try:
        new_with_props = getattr(Fiber.Pool, "new_with_properties", None)
        if new_with_props is not None:
            pool = _new_with_properties(new_with_props, name, props)
        elif name in _PROCESS_POOL_TYPES:
            pool = _new_process_pool(name, props)
        else:
            pool = _new_from_config(name, props)
    except GLib.Error as e:
        raise translate_error(e) from None
    if _has_property(pool, "result-thread"):
        pool.set_property("result-thread", True)
    return pool


def _new_with_properties(new_with_props, name, props):
    from gi.repository import GObject
    pool_class = _gi().Pool.lookup_type(name) if hasattr(_gi().Pool, "lookup_type") else None
    if pool_class is not None and any(p.name == "worker-command"
                                      for p in GObject.list_properties(pool_class)):
        props.setdefault("worker-command", _worker_command())
    names, values = [], []
    for key, value in props.items():
        names.append(key)
        values.append(value)
    return new_with_props(name, names, values)


def _new_process_pool(name, props):
    from gi.repository import GObject
    kwargs = {key.replace("-", "_"): value for key, value in props.items()}
    kwargs.setdefault("worker_command", _worker_command())
    kwargs.setdefault("daemon", _PROCESS_POOL_TYPES[name])
    pool = GObject.new(_gi().ProcessPool, pool_type=name, **kwargs)
    pool.init(None)
    return pool


def _new_from_config(name, props):
    import json
    config = {"pool_type": name}
    keys = {"processes": "processes", "initializer": "initializer",
            "initargs": "initargs", "maxtasksperchild": "maxtasksperchild",
            "max-retries": "max_retries", "resilient": "resilient",
            "stack-size": "stack_size", "worker-command": "worker_command"}
    rest = {}
    for key, value in props.items():
        if key in keys:
            if key == "initargs":
                value = value.print_(True)
            config[keys[key]] = value
        else:
            rest[key] = value
    pool = _gi().Pool.new_from_config_string(json.dumps(config), -1)
    for key, value in rest.items():
        pool.set_property(key, value)
    return pool


class PoolMixin:
    """multiprocessing.Pool methods mixed into the :class:`Fiber.Pool` override."""

    def __new__(cls, processes=None, initializer=None, initargs=(),
                maxtasksperchild=None, pool_type=None, **properties):
        pool = create_pool(pool_type, processes, initializer, initargs,
                           maxtasksperchild, **properties)
        return pool

    def __init__(self, processes=None, initializer=None, initargs=(),
                 maxtasksperchild=None, pool_type=None, **properties):
        self._fiber_state()

    def _fiber_state(self):
        try:
            return self.__dict__["_fiber_py"]
        except KeyError:
            pass
        name = self.get_pool_type() or ""
        in_process = name in _IN_PROCESS_TYPES or not _has_property(self, "worker-command")
        state = _PoolState(in_process, self.get_processes())
        self.__dict__["_fiber_py"] = state
        return state

    # -- helpers --

    def _check_running(self):
        if self.is_closed():
            raise ValueError("Pool not running")

    def _c(self):
        return _gi().Pool

    # -- apply --

    def apply(self, func, args=(), kwds={}):
        """Runs ``func(*args, **kwds)`` in a worker and returns its result."""
        if isinstance(func, str):
            self._check_running()
            return self._c().apply(self, func, args)
        if self._fiber_state().in_process or not callable(func):
            return self.apply_async(func, args, kwds).get()
        # The synchronous C call: no result object, and a closed pool is
        # its FIBER_ERROR_CLOSED (PoolClosedError, a ValueError).
        payload = _common.pack((func, tuple(args), kwds or None))
        try:
            value = self._c().apply(self, _common.TASK_CALL, payload)
        except GLib.Error as e:
            raise translate_error(e) from None
        ok, value = _decode_call(value)
        if ok:
            return value
        raise value

    def apply_async(self, func, args=(), kwds={}, callback=None, error_callback=None):
        """Like :meth:`multiprocessing.pool.Pool.apply_async`."""
        self._check_running()
        state = self._fiber_state()
        if isinstance(func, str):
            result = AsyncResult(self, callback, error_callback, None)
            variant = args if isinstance(args, GLib.Variant) else _UNIT
            self._submit_c(result, self._c().apply_async, func, variant)
            return result
        if not callable(func):
            raise TypeError("func must be a callable or a task name")
        if state.in_process:
            return self._apply_in_process(func, tuple(args), dict(kwds),
                                          callback, error_callback)
        result = AsyncResult(self, callback, error_callback, _decode_call)
        payload = _common.pack((func, tuple(args), kwds or None))
        self._submit_c(result, self._c().apply_async, _common.TASK_CALL, payload)
        return result

    def _submit_c(self, result, method, task, variant, *extra):
        if result._callback is not None or result._error_callback is not None:
            cb = result._on_ready
        else:
            cb = None
        try:
            result.fiber_result = method(self, task, variant, *extra, None, cb)
        except GLib.Error as e:
            raise translate_error(e) from None
        return result

    def _apply_in_process(self, func, args, kwargs, callback, error_callback):
        state = self._fiber_state()
        result = AsyncResult(self, callback, error_callback, None)
        call = _InProcessCall(state, result, func, args, kwargs)
        with state.lock:
            state.calls.add(call)
        try:
            result.fiber_result = self._c().apply_func(self, _UNIT, call.body)
        except GLib.Error as e:
            with state.lock:
                state.calls.discard(call)
            raise translate_error(e) from None
        result.fiber_result = None   # completes from Python
        return result

    # -- map family --

    def _chunksize(self, n, chunksize, default_one=False):
        if chunksize is not None:
            if chunksize < 1:
                raise ValueError("Chunksize must be 1+, not {0:n}".format(chunksize))
            return chunksize
        if default_one or n == 0:
            return 1
        chunksize, extra = divmod(n, self._fiber_state().processes * 4)
        return chunksize + 1 if extra else max(chunksize, 1)

    def _chunks(self, func, items, chunksize, star):
        return [(func, items[i:i + chunksize], star)
                for i in range(0, len(items), chunksize)]

    def _map_async(self, func, iterable, chunksize, callback, error_callback, star):
        self._check_running()
        state = self._fiber_state()
        if isinstance(func, str):
            result = MapResult(self, callback, error_callback, None)
            method = self._c().starmap_async if star else self._c().map_async
            return self._submit_c(result, method, func, iterable, chunksize or 0)
        if not callable(func):
            raise TypeError("func must be a callable or a task name")
        items = list(iterable)
        chunksize = self._chunksize(len(items), chunksize)
        if state.in_process:
            return self._map_in_process(func, items, chunksize, star,
                                        callback, error_callback)
        result = MapResult(self, callback, error_callback, _decode_chunks)
        payloads = [_common.dumps(chunk)
                    for chunk in self._chunks(func, items, chunksize, star)]
        iterable_v = _common.bytes_list_to_array_variant(payloads)
        return self._submit_c(result, self._c().map_async, _common.TASK_CHUNK,
                              iterable_v, 1)

    def _map_in_process(self, func, items, chunksize, star, callback, error_callback):
        result = MapResult(self, callback, error_callback, None)
        chunks = self._chunks(func, items, chunksize, star)
        if not chunks:
            result._set(True, [])
            return result
        values = [None] * len(chunks)
        remaining = [len(chunks)]
        failure = []
        lock = threading.Lock()

        def make_done(i):
            def done_ok(value):
                _chunk_done(i, True, value)

            def done_err(exc):
                _chunk_done(i, False, exc)
            return done_ok, done_err

        def _chunk_done(i, ok, value):
            with lock:
                if ok:
                    values[i] = value
                elif not failure:
                    failure.append(value)
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                if failure:
                    result._set(False, failure[0])
                else:
                    result._set(True, list(itertools.chain.from_iterable(values)))

        for i, chunk in enumerate(chunks):
            ok_cb, err_cb = make_done(i)
            self._apply_in_process(_run_chunk, chunk, {}, ok_cb, err_cb)
        return result

    def map(self, func, iterable, chunksize=None):
        return self._map_async(func, iterable, chunksize, None, None, False).get()

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        return self._map_async(func, iterable, chunksize, callback, error_callback, False)

    def starmap(self, func, iterable, chunksize=None):
        return self._map_async(func, iterable, chunksize, None, None, True).get()

    def starmap_async(self, func, iterable, chunksize=None, callback=None,
                      error_callback=None):
        return self._map_async(func, iterable, chunksize, callback, error_callback, True)

    def imap(self, func, iterable, chunksize=1):
        return self._imap(func, iterable, chunksize, ordered=True)

    def imap_unordered(self, func, iterable, chunksize=1):
        return self._imap(func, iterable, chunksize, ordered=False)

    def _imap(self, func, iterable, chunksize, ordered):
        self._check_running()
        state = self._fiber_state()
        if isinstance(func, str):
            method = self._c().imap if ordered else self._c().imap_unordered
            try:
                c_result = method(self, func, iterable, chunksize or 0)
            except GLib.Error as e:
                raise translate_error(e) from None
            return IMapIterator(_c_imap_source(c_result, None))
        if not callable(func):
            raise TypeError("func must be a callable or a task name")
        items = list(iterable)
        chunksize = self._chunksize(len(items), chunksize, default_one=True)
        chunks = self._chunks(func, items, chunksize, False)
        if state.in_process:
            return IMapIterator(self._imap_in_process(chunks, ordered))
        payloads = [_common.dumps(chunk) for chunk in chunks]
        method = self._c().imap if ordered else self._c().imap_unordered
        try:
            c_result = method(self, _common.TASK_CHUNK,
                              _common.bytes_list_to_array_variant(payloads), 1)
        except GLib.Error as e:
            raise translate_error(e) from None
        return IMapIterator(_c_imap_source(c_result, _common.decode_result))

    def _imap_in_process(self, chunks, ordered):
        q = queue.Queue()
        results = []
        for i, chunk in enumerate(chunks):
            r = self._apply_in_process(_run_chunk, chunk, {},
                                       (lambda v, i=i: q.put((i, True, v))),
                                       (lambda e, i=i: q.put((i, False, e))))
            results.append(r)
        return _py_imap_source(q, len(chunks), ordered)

    # -- lifecycle --

    def close(self):
        self._c().close(self)

    def terminate(self):
        self._c().terminate(self)
        self._fail_in_process(PoolClosedError, started_too=False)

    def join(self, timeout=None):
        """Waits for the workers to exit after :meth:`close` or
        :meth:`terminate`; returns whether they did within @timeout."""
        if not self.is_closed():
            raise ValueError("Pool is still running")
        try:
            return self._c().join(self, _timeout_msec(timeout))
        except GLib.Error as e:
            exc = translate_error(e)
            if isinstance(exc, TimeoutError):
                return False
            raise exc from None

    def interrupt(self):
        """Makes running tasks fail with :class:`TaskInterrupted`; the pool
        stays usable.  Worker processes get SIGINT; in-process pools fail
        every call submitted so far (a thread cannot be preempted) and raise
        the exception in callables still running."""
        self._c().interrupt(self)
        self._fail_in_process(self._fiber_state().interrupt_exc, started_too=True)

    def _fail_in_process(self, exc_type, started_too):
        state = self._fiber_state()
        if not state.in_process:
            return
        with state.lock:
            calls = list(state.calls)
        for call in calls:
            if call.result._done:
                continue
            if call.started and not started_too:
                continue
            call.interrupt(exc_type)

    def __enter__(self):
        self._check_running()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        # multiprocessing's terminate() waits for its workers; here join()
        # does, with the GIL released.  Leaving that to the last unref
        # would be worse: dispose waits for the pool's threads while the
        # caller holds the GIL, and a thread that still has to drop a
        # Python callable (or run a callback) needs it.
        self.terminate()
        self.join()

    def __reduce__(self):
        raise NotImplementedError(
            "pool objects cannot be passed between processes or pickled")


def _run_chunk(func, items, star):
    if star:
        return [func(*item) for item in items]
    return [func(item) for item in items]


def _c_imap_source(c_result, decode):
    """(ok, value) items from a Fiber.MapResult, expanding chunks."""
    pending = []

    def source(timeout):
        while not pending:
            try:
                more, index, value = c_result.next(_timeout_msec(timeout))
            except GLib.Error as e:
                exc = translate_error(e)
                if isinstance(exc, TimeoutError):
                    raise exc from None
                return False, exc
            if not more:
                raise StopIteration
            if decode is None:
                return True, value
            ok, chunk = decode(_common.result_bytes(value))
            if not ok:
                return False, chunk
            pending.extend(chunk)
        return True, pending.pop(0)
    return source


def _py_imap_source(q, n_chunks, ordered):
    pending = []
    stash = {}
    state = {"next": 0, "seen": 0}

    def take(timeout):
        try:
            return q.get(timeout=timeout) if timeout is None or timeout > 0 \
                else q.get_nowait()
        except queue.Empty:
            raise TimeoutError from None

    def source(timeout):
        while not pending:
            if ordered:
                if state["next"] >= n_chunks:
                    raise StopIteration
                while state["next"] not in stash:
                    i, ok, value = take(timeout)
                    stash[i] = (ok, value)
                ok, value = stash.pop(state["next"])
                state["next"] += 1
            else:
                if state["seen"] >= n_chunks:
                    raise StopIteration
                _, ok, value = take(timeout)
                state["seen"] += 1
            if not ok:
                return False, value
            pending.extend(value)
        return True, pending.pop(0)
    return source


def cpu_count():
    return _gi().cpu_count()
