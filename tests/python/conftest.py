# Shared fixtures of the Python test suite (pytest, /usr/bin/python3).
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import time

import pytest

import gi
gi.require_version("Fiber", "1.0")
from gi.repository import Fiber  # noqa: E402


def _children():
    try:
        import psutil
    except ImportError:
        return set()
    return {c.pid for c in psutil.Process().children(recursive=True)}


@pytest.fixture(autouse=True)
def check_leak():
    """Like Fiber's own check_leak: no Fiber child and no OS child process
    outlives a test."""
    assert Fiber.active_children() == []
    before = _children()
    yield
    deadline = time.monotonic() + 10
    while True:
        leaked = _children() - before
        if not leaked and Fiber.active_children() == []:
            break
        if time.monotonic() > deadline:
            for pid in leaked:
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
            pytest.fail("leaked child processes: %s" % sorted(leaked))
        time.sleep(0.05)


def pool_types():
    return list(Fiber.Pool.list_types())


def has_pool_type(name):
    return name in pool_types()
