# Fiber's own test_process_misc.py behaviours.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import time

from gi.repository import Fiber

import helpers


def test_active_children():
    p1 = Fiber.Process(target=time.sleep, args=(1,), name="test_active_children1")
    p1.start()
    p2 = Fiber.Process(target=time.sleep, args=(1,), name="test_active_children2")
    p2.start()
    try:
        children = Fiber.active_children()
        assert len(children) == 2
        assert {c.name for c in children} == {"test_active_children1",
                                              "test_active_children2"}
    finally:
        p1.join()
        p2.join()
    assert Fiber.active_children() == []


def test_cpu_count():
    c = Fiber.cpu_count()
    assert c > 0
    assert c == len(os.sched_getaffinity(0))


def test_current_process():
    c = Fiber.current_process()
    assert c.pid > 0
    assert isinstance(c, Fiber.Process)


def test_current_process_nested(tmp_path):
    out = tmp_path / "pid"
    p = Fiber.Process(target=helpers.write_current_pid, args=(str(out),),
                      name="test_current_process_nested")
    p.start()
    p.join()
    assert p.exitcode == 0
    assert int(out.read_text()) == p.pid
