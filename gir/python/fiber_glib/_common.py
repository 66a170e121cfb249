# fiber_glib._common — what the caller and the Python workers share
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Wire format of Python calls on top of Fiber tasks.

A Python call travels as the Fiber task ``python.call`` whose arguments are
a ``(ay)`` tuple holding ``pickle.dumps((func, args, kwargs))``.  Functions
are pickled by reference, so they must be importable in the worker: module
level functions, and functions of the main script, which the worker imports
as ``__mp_main__`` the way multiprocessing's *spawn* start method does.

The result is again a ``(ay)`` tuple holding ``pickle.dumps((ok, value))``;
when ``ok`` is false ``value`` is the exception, wrapped so that unpickling
re-creates the original exception type with the remote traceback text
attached as ``__cause__`` (:class:`multiprocessing.pool.RemoteTraceback`).
Keeping the Python exception inside a successful Fiber result is on
purpose: the GError of a failed C task carries only a message, and the
caller must see the task's own exception type.
"""

import base64
import json
import os
import pickle
import struct
import sys
import traceback
import types
import runpy
from multiprocessing.pool import ExceptionWithTraceback, MaybeEncodingError

from gi.repository import GLib

TASK_CALL = "python.call"          # (ay) pickled (func, args, kwargs) -> (ay) pickled (ok, value)
TASK_CHUNK = "python.chunk"        # (ay) pickled (func, [args...], star) -> (ay) pickled (ok, [values])
TASK_INIT = "python.init"          # (ay) pickled (func, args, {}) -> ()
TASK_PROCESS = "python.process"    # (ay) pickled (func, args, kwargs) -> () / exit status

_AY_TUPLE = GLib.VariantType.new("(ay)")
_A_AY_TUPLE = GLib.VariantType.new("a(ay)")

PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL


def dumps(obj):
    return pickle.dumps(obj, PICKLE_PROTOCOL)


def pack(obj):
    """Pickles @obj into a ``(ay)`` GLib.Variant."""
    return bytes_to_variant(pickle.dumps(obj, PICKLE_PROTOCOL))


# Bound once: GLib.Bytes goes through the overrides proxy module's
# __getattr__ on every lookup, which costs as much as the call.
_bytes_new = GLib.Bytes.new
_variant_new_from_bytes = GLib.Variant.new_from_bytes


def bytes_to_variant(data):
    # The serialised form of "(ay)" is the byte array itself (the last
    # member of a tuple has no framing offset, alignment is 1).
    return _variant_new_from_bytes(_AY_TUPLE, _bytes_new(data), False)


def variant_to_bytes(variant):
    """The bytes of a ``(ay)`` variant (no copy beyond one memoryview)."""
    if variant.get_type_string() != "(ay)":
        raise TypeError("expected a (ay) variant, got %s" % variant.get_type_string())
    return variant.get_data_as_bytes().get_data()


def _offset_size(content, n):
    for size, limit in ((1, 0xFF), (2, 0xFFFF), (4, 0xFFFFFFFF)):
        if content + n * size <= limit:
            return size
    return 8


def bytes_list_to_array_variant(items):
    """Builds an ``a(ay)`` variant from a list of byte strings.

    Serialised by hand (elements, then the framing offsets of their ends)
    because building it through GLib.Variant costs microseconds per item.
    """
    if not items:
        return _variant_new_from_bytes(_A_AY_TUPLE, _bytes_new(b""), False)
    ends = []
    total = 0
    for item in items:
        total += len(item)
        ends.append(total)
    size = _offset_size(total, len(items))
    fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}[size]
    data = b"".join(items) + struct.pack("<%d%s" % (len(ends), fmt), *ends)
    return _variant_new_from_bytes(_A_AY_TUPLE, _bytes_new(data), False)


def result_bytes(variant):
    """The bytes of the ``(ay)`` result of a python.* task (the type is
    the task's own: no check, one copy)."""
    return variant.get_data_as_bytes().get_data()


_OFFSET_FORMATS = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}
_V_AY_SUFFIX = b"\0(ay)"


def _split_av_of_ay(data, n):
    """Splits the serialised form of an ``av`` whose @n children are all
    ``(ay)`` into their byte strings; None when @data is not in that shape
    (the caller then goes through GLib).

    Layout (GVariant specification): the children, each starting at an
    8-aligned offset ("v" has alignment 8), each being its value's bytes, a
    zero byte and the type string; then the end offset of every child, in
    the smallest size that can address the whole container.
    """
    size = len(data)
    if n == 0:
        return [] if size == 0 else None
    osize = 1 if size <= 0xFF else 2 if size <= 0xFFFF else 4 if size <= 0xFFFFFFFF else 8
    fmt = _OFFSET_FORMATS[osize]
    table = size - n * osize
    if table < 0:
        return None
    ends = struct.unpack_from("<%d%s" % (n, fmt[1]), data, table)
    if ends[-1] != table:
        return None
    out = []
    start = 0
    for end in ends:
        if end - start < 5 or data[end - 5:end] != _V_AY_SUFFIX:
            return None
        out.append(data[start:end - 5])
        start = (end + 7) & ~7
    return out


def av_to_bytes_list(variant):
    """Splits an ``av`` of ``(ay)`` results into their byte strings."""
    if variant.get_type_string() != "av":
        raise TypeError("expected an av variant, got %s" % variant.get_type_string())
    n = variant.n_children()
    out = _split_av_of_ay(variant.get_data_as_bytes().get_data(), n)
    if out is not None:
        return out
    out = []
    for i in range(n):
        out.append(variant_to_bytes(variant.get_child_value(i).get_variant()))
    return out


# ---- exceptions -----------------------------------------------------------

def encode_failure(exc):
    """Pickled (False, exception) with the remote traceback attached."""
    try:
        return pickle.dumps((False, ExceptionWithTraceback(exc, exc.__traceback__)),
                            PICKLE_PROTOCOL)
    except Exception as e:  # the exception itself does not pickle
        err = MaybeEncodingError(e, repr(exc))
        return pickle.dumps((False, ExceptionWithTraceback(err, exc.__traceback__)),
                            PICKLE_PROTOCOL)


def encode_success(value):
    try:
        return pickle.dumps((True, value), PICKLE_PROTOCOL)
    except Exception as e:
        return encode_failure(MaybeEncodingError(e, repr(value)))


def _same(exc):
    return exc


def handle_call(data, map_exception=_same):
    """Body of ``python.call``: pickled (func, args, kwargs) in, pickled
    (ok, value) out.  Never raises."""
    try:
        func, args, kwargs = pickle.loads(data)
        value = func(*args, **(kwargs or {}))
    except BaseException as e:  # KeyboardInterrupt and SystemExit are task failures too
        return encode_failure(map_exception(e))
    return encode_success(value)


def handle_chunk(data, map_exception=_same):
    """Body of ``python.chunk``: pickled (func, [args], star) in, pickled
    (ok, [values] | first exception) out."""
    try:
        func, items, star = pickle.loads(data)
        if star:
            values = [func(*item) for item in items]
        else:
            values = [func(item) for item in items]
    except BaseException as e:
        return encode_failure(map_exception(e))
    return encode_success(values)


def decode_result(data):
    """(ok, value) from a pickled task result; a result that cannot be
    unpickled becomes a failure."""
    try:
        return pickle.loads(data)
    except Exception as e:
        return False, e


# ---- preparing a spawned worker like multiprocessing's spawn -------------

ENV_PREPARATION = "FIBER_PY_PREPARATION"


def preparation_data():
    """What a fresh interpreter needs to unpickle functions of this one."""
    data = {"sys_path": list(sys.path), "cwd": os.getcwd()}
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None)
    if name is not None:
        data["main_name"] = name
    else:
        path = getattr(main, "__file__", None)
        if path is not None:
            data["main_path"] = os.path.abspath(path)
    return data


def encode_preparation(data=None):
    if data is None:
        data = preparation_data()
    return base64.b64encode(json.dumps(data).encode()).decode("ascii")


def decode_preparation(text):
    return json.loads(base64.b64decode(text.encode("ascii")).decode())


def prepare(data):
    """Applies preparation data in a worker (sys.path, cwd, main module)."""
    if not data:
        return
    if "sys_path" in data:
        sys.path[:] = data["sys_path"]
    cwd = data.get("cwd")
    if cwd and os.path.isdir(cwd):
        try:
            os.chdir(cwd)
        except OSError:
            pass
    if "main_name" in data:
        _fixup_main_from_name(data["main_name"])
    elif "main_path" in data:
        _fixup_main_from_path(data["main_path"])


def _install_main(module):
    sys.modules["__main__"] = sys.modules["__mp_main__"] = module


def _fixup_main_from_name(mod_name):
    # A package's __main__ (python -m pytest) is not re-run: it is the
    # program, not a module defining functions to call.
    if mod_name == "__main__" or mod_name.endswith(".__main__"):
        return
    current = sys.modules["__main__"]
    if getattr(current.__spec__, "name", None) == mod_name:
        return
    module = types.ModuleType("__mp_main__")
    module.__dict__.update(runpy.run_module(mod_name, run_name="__mp_main__",
                                            alter_sys=True))
    _install_main(module)


def _fixup_main_from_path(main_path):
    current = sys.modules["__main__"]
    name = os.path.splitext(os.path.basename(main_path))[0]
    if name == "ipython" or not os.path.exists(main_path):
        return
    if getattr(current, "__file__", None) == main_path:
        return
    module = types.ModuleType("__mp_main__")
    module.__dict__.update(runpy.run_path(main_path, run_name="__mp_main__"))
    _install_main(module)


def format_exception(exc):
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
