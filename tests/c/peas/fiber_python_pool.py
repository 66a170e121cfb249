# SPDX-License-Identifier: LGPL-2.1-or-later
"""A libpeas plugin offering the pool type "python-inline", written in Python.

The pool runs every item of a batch at once in the calling thread: a pool
type only implements execution, Fiber.Pool does the rest (batches, map
results, errors).  The module registers the type by name on import, so
fiber_pool_new("python-inline") works too, and exposes it through a
Fiber.PoolProvider, the extension interface libpeas hosts look up.
"""

import gi

gi.require_version("Fiber", "1.0")
from gi.repository import Fiber, GLib, GObject  # noqa: E402


def _complete(batch, index, value, error):
    # PyGObject 3.42 cannot pass None for a GError argument, so
    # Batch.complete_item() (value or error) cannot report a success from
    # Python; the split completion calls can.
    if error is None:
        batch.complete_item_value(index, value)
    else:
        batch.complete_item_error(index, error)


class PythonInlinePool(Fiber.Pool):
    __gtype_name__ = "FiberTestPythonInlinePool"

    def do_submit(self, batch):
        for index in range(batch.get_n_items()):
            try:
                value = batch.invoke(index, None)
            except GLib.Error as error:
                _complete(batch, index, None, error)
            else:
                _complete(batch, index, value, None)
        return True

    def do_close(self):
        pass

    def do_terminate(self):
        pass

    def do_join(self, timeout_msec):
        return True

    def do_interrupt(self):
        pass


Fiber.Pool.register_pool_type("python-inline", PythonInlinePool, 5)


class PythonPoolProvider(GObject.Object, Fiber.PoolProvider):
    __gtype_name__ = "FiberTestPythonPoolProvider"

    def do_list_pool_types(self):
        return ["python-inline"]

    def do_create_pool(self, pool_type, config):
        options = config.unpack() if config is not None else {}
        return PythonInlinePool(pool_type=pool_type,
                                processes=options.get("processes", 1))
