# fiber_glib.process — multiprocessing.Process API on top of Fiber.Process
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Python face of :class:`Fiber.Process`.

``Fiber.Process(target=f, args=(…), kwargs={…}, name=…, daemon=…)`` runs
``f`` in a new ``python3 -m fiber_glib.worker`` process started by the
process's backend (the local one by default, a cluster job otherwise), with
the attributes and methods of :class:`multiprocessing.Process`: ``name``,
``daemon``, ``pid``/``ident``, ``exitcode`` (negative: killed by that
signal), ``authkey``, ``sentinel``, ``start``, ``run``, ``join``,
``is_alive``, ``terminate``, ``kill``, ``close``.

The target travels pickled by reference (module-level functions, or
functions of the main script, which the child imports as ``__mp_main__``).
An exception in the target ends the child with exit code 1 after printing
its traceback, ``sys.exit(n)`` with ``n``, like multiprocessing.
"""

import itertools
import sys
import threading

from gi.repository import GLib

from fiber_glib import _common, tasks
from fiber_glib.pool import _gi, _has_property, _timeout_msec, _worker_command, \
    translate_error

__all__ = ["ProcessMixin", "active_children", "current_process", "cpu_count"]

_counter = itertools.count(1)


def _noop():
    return None


_init_lock = threading.Lock()
_init_done = False

# Started children, as multiprocessing's process._children.  Kept on the
# Python side: it holds the Python wrappers (with their targets) alive
# while the children run, as multiprocessing does, and lists only the
# children this Python code started.
_children_lock = threading.Lock()
_children = set()


def ensure_init():
    """Makes fiber_init() record the Python worker as "this program".

    A Fiber.Process re-executes the program that called fiber_init() (its
    children run the target from their own fiber_init()).  For a Python
    program that is ``python3 -m fiber_glib.worker`` with the preparation
    data of this interpreter, not the script itself.  In a worker, the
    worker's own fiber_init() call came first and this is a no-op.
    """
    global _init_done
    with _init_lock:
        if _init_done:
            return
        # The trailing None ends the array for C code that expects a
        # NULL-terminated argv.
        _gi().init(_worker_command() + [None])
        _init_done = True


class ProcessMixin:
    """multiprocessing.Process attributes mixed into the :class:`Fiber.Process` override."""

    def __new__(cls, group=None, target=None, name=None, args=(), kwargs={},
                *, daemon=None, **properties):
        if group is not None:
            raise AssertionError("group argument must be None for now")
        tasks.register_tasks()
        ensure_init()
        payload = _common.pack((target if target is not None else _noop,
                                tuple(args), dict(kwargs)))
        return _gi().Process.new(_common.TASK_PROCESS, payload)

    def __init__(self, group=None, target=None, name=None, args=(), kwargs={},
                 *, daemon=None, **properties):
        if "_fiber_target" in self.__dict__:
            return
        self.__dict__["_fiber_target"] = (target, tuple(args), dict(kwargs))
        if name is not None:
            self.set_name(str(name))
        elif not self.get_name():
            self.set_name("Process-%d" % next(_counter))
        if daemon is not None:
            self.set_daemon(bool(daemon))
        if _has_property(self, "worker-command"):
            self.set_property("worker-command", _worker_command())
        for key, value in properties.items():
            self.set_property(key.replace("_", "-"), value)

    # -- methods --

    def start(self):
        """Starts the child process."""
        try:
            _gi().Process.start(self)
            with _children_lock:
                _children.add(self)
        except GLib.Error as e:
            exc = translate_error(e)
            if exc is e and e.matches(_gi().error_quark(), _gi().Error.DAEMONIC):
                raise AssertionError(e.message) from None
            raise exc from None

    def run(self):
        """Runs the target in this process (what the child does)."""
        target, args, kwargs = self.__dict__.get("_fiber_target", (None, (), {}))
        if target is not None:
            target(*args, **kwargs)

    def join(self, timeout=None):
        """Waits until the process ends or @timeout seconds pass."""
        _gi().Process.join(self, _timeout_msec(timeout))

    def close(self):
        if self.is_alive():
            raise ValueError("Cannot close a process while it is still running. "
                             "You should first call join() or terminate().")
        self.__dict__["_fiber_closed"] = True

    # -- attributes --

    @property
    def name(self):
        return self.get_name()

    @name.setter
    def name(self, value):
        if not isinstance(value, str):
            raise TypeError("name must be a string")
        self.set_name(value)

    @property
    def daemon(self):
        return bool(self.get_daemon())

    @daemon.setter
    def daemon(self, value):
        if self.pid is not None:
            raise AssertionError("process has already started")
        self.set_daemon(bool(value))

    @property
    def pid(self):
        pid = self.get_pid()
        return pid if pid > 0 else None

    ident = pid

    @property
    def exitcode(self):
        done, code = self.get_exitcode()
        return code if done else None

    @property
    def authkey(self):
        key = self.get_authkey()
        return key.get_data() if key is not None else None

    @authkey.setter
    def authkey(self, value):
        self.set_authkey(GLib.Bytes.new(bytes(value)))

    @property
    def sentinel(self):
        fd = self.get_sentinel()
        if fd < 0:
            raise ValueError("process not started")
        return fd

    def __repr__(self):
        code = self.exitcode
        if self.pid is None:
            status = "initial"
        elif code is None:
            status = "started"
        else:
            status = "stopped exitcode=%d" % code
        return "<%s name=%r %s%s>" % (type(self).__name__, self.name, status,
                                      " daemon" if self.daemon else "")

    def __reduce__(self):
        raise TypeError("Fiber.Process objects cannot be pickled")


def active_children():
    """The started children of this process that are still alive; like
    multiprocessing, the call forgets the children that have ended."""
    with _children_lock:
        children = list(_children)
    alive = [p for p in children if p.is_alive()]
    with _children_lock:
        _children.difference_update(p for p in children if p not in alive)
    return alive


def current_process():
    """The :class:`Fiber.Process` describing this process."""
    return _gi().current_process()


def cpu_count():
    return _gi().cpu_count()
