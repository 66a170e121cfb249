# fiber_glib.pytest_plugin — Fiber pool types for pypushflow's test suite
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""pytest plugin: ``pytest -p fiber_glib.pytest_plugin …``.

pypushflow's concurrency tests list the pool types when their modules are
imported (``tests/concurrent/utils.py: POOLS``), so the Fiber types must be
in ``pypushflow.concurrent.factory._POOLS`` before collection: a ``-p``
plugin is loaded before any test module.  Select one type with
``-k fiber-process`` and so on.
"""

from fiber_glib import pushflow

REGISTERED = pushflow.register()


def pytest_report_header(config):
    return "fiber-glib pypushflow pool types: " + ", ".join(REGISTERED)
