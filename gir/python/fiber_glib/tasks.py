# fiber_glib.tasks — the python.* Fiber tasks
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Registers the Fiber tasks that run pickled Python callables.

``python.call``     ``(ay)`` pickled ``(func, args, kwargs)`` → ``(ay)`` pickled ``(ok, value)``
``python.chunk``    ``(ay)`` pickled ``(func, [args…], star)`` → ``(ay)`` pickled ``(ok, [values])``
``python.init``     ``(ay)`` pickled ``(func, args, kwargs)`` → ``()``  (pool initializer)
``python.process``  ``(ay)`` pickled ``(func, args, kwargs)`` → ``()``; the target of a
                    :class:`Fiber.Process`: an exception or ``sys.exit(n)`` ends the
                    process with multiprocessing's exit codes.

A Python exception is part of the *successful* result of ``python.call``
(see :mod:`fiber_glib._common`), so the task body never raises.
"""

import _thread
import ctypes
import os
import pickle
import signal
import sys
import threading
import traceback

from gi.repository import GLib

from fiber_glib import _common
from fiber_glib.errors import TaskInterrupted

_UNIT = GLib.Variant("()", ())

_registered = False
_lock = threading.Lock()


def _libc_sigaction():
    try:
        func = ctypes.CDLL(None, use_errno=True).sigaction
    except (OSError, AttributeError):
        return None
    func.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
    func.restype = ctypes.c_int
    return func


# sigaction(2) of the C library; the records are only saved and restored,
# never read, so an opaque buffer larger than any struct sigaction will do.
_sigaction = _libc_sigaction()
_SIGACTION_SIZE = 512


class _TaskSignals:
    """In a worker process, while a Python task runs on the main thread,
    SIGINT raises KeyboardInterrupt (once); otherwise the worker runtime's
    own handler has it (it cancels a running C task, and a worker between
    tasks ignores it, as multiprocessing workers do).

    The hooks cost little per task (installing a Python signal handler and
    connecting to the task's GCancellable cost more than the rest of a
    small task's wrapper): the Python handler is installed once and then
    switched with the runtime's by one sigaction() each way, and a
    "cancelled" handler is connected once per GCancellable the runtime
    hands out (it reuses one until a task is interrupted).
    """

    def __init__(self):
        self.worker = False        # set by fiber_glib.worker
        self.active = False
        self.raised = False
        self.installed = False
        self.c_action = None       # raw struct sigaction of the worker runtime
        self.py_action = None      # ... and of Python's own signal handler
        self.cancellable = None
        self.main_ident = threading.main_thread().ident

    def _handler(self, signum, frame):
        if self.active and not self.raised:
            self.raised = True
            raise KeyboardInterrupt("task interrupted by signal %d" % signum)

    def _on_cancelled(self, *unused):
        """On the worker's watchdog thread when the task's GCancellable is
        cancelled (an INTERRUPT from the pool).  A real signal, unlike
        _thread.interrupt_main(), also cuts a blocking call such as
        time.sleep() short."""
        if self.active and not self.raised:
            try:
                signal.pthread_kill(self.main_ident, signal.SIGINT)
            except (OSError, ValueError):
                _thread.interrupt_main()

    def begin(self, cancellable):
        self.raised = False
        if not self.worker or threading.get_ident() != self.main_ident:
            return
        if not self.installed:
            self._install()
        elif self.py_action is not None:
            _sigaction(signal.SIGINT, self.py_action, None)
        self.active = True
        if cancellable is not None and cancellable is not self.cancellable:
            self.cancellable = cancellable
            cancellable.connect(self._on_cancelled)

    def end(self):
        self.active = False
        if self.c_action is not None:
            # Back to the worker runtime's handler, which cancels the task
            # that runs next: a registered C task run by name is
            # interrupted through its GCancellable.
            _sigaction(signal.SIGINT, self.c_action, None)

    def _install(self):
        """Installs the Python SIGINT handler (it interrupts Python code,
        which the worker runtime's handler cannot), keeping both handlers'
        raw sigaction records so that each task switches between them with
        one system call and no Python-level signal.signal()."""
        self.installed = True
        self.c_action = self.py_action = None
        if _sigaction is not None:
            c_action = ctypes.create_string_buffer(_SIGACTION_SIZE)
            if _sigaction(signal.SIGINT, None, c_action) == 0:
                signal.signal(signal.SIGINT, self._handler)
                py_action = ctypes.create_string_buffer(_SIGACTION_SIZE)
                if _sigaction(signal.SIGINT, None, py_action) == 0:
                    self.c_action, self.py_action = c_action, py_action
                return
        signal.signal(signal.SIGINT, self._handler)

    def interrupted_exception(self, exc):
        """What the caller sees for @exc: a KeyboardInterrupt caused by an
        interrupt of the pool becomes TaskInterrupted."""
        if self.raised and isinstance(exc, KeyboardInterrupt):
            new = TaskInterrupted(str(exc) or "task interrupted")
            new.__cause__ = exc
            new.__traceback__ = exc.__traceback__
            return new
        return exc


_signals = _TaskSignals()


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _run(handler, args, cancellable):
    # python.* tasks take "(ay)": its serialised form is the bytes
    # themselves.  A caller that sent anything else gets the unpickling
    # error back as the task's failure.
    data = args.get_data_as_bytes().get_data()
    signals = _signals
    signals.begin(cancellable)
    try:
        out = handler(data, signals.interrupted_exception)
    except BaseException as e:  # a late KeyboardInterrupt
        out = _common.encode_failure(signals.interrupted_exception(e))
    finally:
        signals.end()
    _flush()
    return _common.bytes_to_variant(out)


def _task_call(args, cancellable, *user_data):
    return _run(_common.handle_call, args, cancellable)


def _task_chunk(args, cancellable, *user_data):
    return _run(_common.handle_chunk, args, cancellable)


def _task_init(args, cancellable, *user_data):
    try:
        func, fargs, kwargs = pickle.loads(_common.variant_to_bytes(args))
        func(*fargs, **(kwargs or {}))
    except BaseException:
        sys.stderr.write("fiber_glib: pool initializer failed in process %d:\n" % os.getpid())
        traceback.print_exc()
    _flush()
    return _UNIT


def _task_process(args, cancellable, *user_data):
    """Runs a Fiber.Process target like multiprocessing.Process._bootstrap."""
    exitcode = 0
    try:
        func, fargs, kwargs = pickle.loads(_common.variant_to_bytes(args))
        func(*fargs, **(kwargs or {}))
    except SystemExit as e:
        if e.code is None:
            exitcode = 0
        elif isinstance(e.code, int):
            exitcode = e.code
        else:
            sys.stderr.write(str(e.code) + "\n")
            exitcode = 1
    except BaseException:
        exitcode = 1
        from gi.repository import Fiber
        current = Fiber.current_process()
        name = current.get_name() if current is not None else "Process"
        sys.stderr.write("Process %s:\n" % name)
        traceback.print_exc()
    _flush()
    if exitcode != 0:
        os._exit(exitcode)
    return _UNIT


def register_tasks():
    """Registers the python.* tasks in this process (idempotent).

    Pools of in-process types (thread, coroutine) run the pool initializer
    through ``python.init`` in this very process.
    """
    global _registered
    with _lock:
        if _registered:
            return
        from gi.repository import Fiber
        Fiber.task_register(_common.TASK_CALL, _task_call)
        Fiber.task_register(_common.TASK_CHUNK, _task_chunk)
        Fiber.task_register(_common.TASK_INIT, _task_init)
        Fiber.task_register(_common.TASK_PROCESS, _task_process)
        _registered = True


register_worker_tasks = register_tasks
