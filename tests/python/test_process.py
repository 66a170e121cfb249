# Fiber's own test_process.py behaviours against Fiber.Process.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import math
import select
import signal
import time

import pytest
from gi.repository import Fiber

import helpers
from helpers import func_add, func_error


def test_process():
    p = Fiber.Process(target=func_add, args=(42, 89), name="test_process")
    p.start()
    p.join()
    assert p.exitcode == 0


def test_process_is_a_gobject():
    p = Fiber.Process(target=func_add, args=(1, 2))
    assert isinstance(p, Fiber.Process)
    assert p.get_task() == "python.process"


def test_process_error():
    p = Fiber.Process(target=func_error, name="test_process_error")
    p.start()
    p.join()
    assert p.exitcode != 0
    assert p.exitcode == 1


def test_process_sys_exit():
    p = Fiber.Process(target=helpers.exit_with, args=(3,))
    p.start()
    p.join()
    assert p.exitcode == 3


def test_none_process():
    p = Fiber.Process(target=None, name="test_none_process")
    p.start()
    p.join()
    assert p.exitcode == 0


def test_multi_processes():
    procs = [Fiber.Process(target=func_add, args=(42, 89), name="test_multi_processes")
             for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    for p in procs:
        assert p.exitcode == 0


def test_process_run():
    p = Fiber.Process(target=func_error, name="test_process_run")
    with pytest.raises(ValueError):
        p.run()


def test_join_timeout():
    p = Fiber.Process(target=time.sleep, args=(3,), name="test_join_timeout")
    p.start()
    now = time.time()
    p.join(1)
    diff = time.time() - now
    assert p.is_alive()
    p.join()
    assert math.fabs(diff - 1) < 0.5
    assert p.exitcode == 0


def test_is_alive():
    # A target that lasts: children start from a pre-forked spare, so a
    # trivial target may be over before start() returns.
    p = Fiber.Process(target=time.sleep, args=(0.5,), name="test_is_alive")
    assert p.is_alive() is False
    p.start()
    assert p.is_alive() is True
    p.join()
    assert p.is_alive() is False


def test_name():
    p = Fiber.Process(target=func_add, args=(42, 89), name="my_process")
    assert p.name == "my_process"
    p.name = "renamed"
    assert p.name == "renamed"
    assert Fiber.Process(target=func_add, args=(1, 2)).name


def test_daemon():
    p = Fiber.Process(target=func_add, args=(42, 89), daemon=True, name="test_daemon")
    p.start()
    assert p.daemon is True
    p.join()
    q = Fiber.Process(target=func_add, args=(42, 89), daemon=False)
    assert q.daemon is False


def test_pid():
    p = Fiber.Process(target=func_add, args=(42, 89), daemon=True, name="test_pid")
    assert p.pid is None
    p.start()
    assert p.pid is not None
    assert p.pid > 0
    assert p.ident == p.pid
    p.join()


def test_authkey():
    p = Fiber.Process(target=func_add, args=(42, 89), daemon=True, name="test_authkey")
    assert p.authkey is not None
    assert isinstance(p.authkey, bytes)
    p.authkey = b"0123456789abcdef0123456789abcdef"
    assert p.authkey == b"0123456789abcdef0123456789abcdef"


def test_sentinel():
    p = Fiber.Process(target=time.sleep, args=(0.5,), name="test_sentinel")
    p.start()
    fds = select.select([p.sentinel], [], [], 0.1)
    assert len(fds[0]) == 0
    fds = select.select([p.sentinel], [], [], 60)
    assert len(fds[0]) == 1
    assert fds[0][0] == p.sentinel
    p.join()


def test_terminate():
    p = Fiber.Process(target=time.sleep, args=(1000,), name="test_terminate")
    p.start()
    assert p.is_alive() is True
    p.terminate()
    p.join(30)
    assert p.is_alive() is False
    assert p.exitcode == -signal.SIGTERM


def test_kill():
    p = Fiber.Process(target=time.sleep, args=(1000,))
    p.start()
    p.kill()
    p.join(30)
    assert p.exitcode == -signal.SIGKILL


def test_exitcode():
    p = Fiber.Process(target=func_add, args=(42, 89), name="test_exitcode")
    assert p.exitcode is None
    p.start()
    deadline = time.time() + 60
    while p.exitcode is None and time.time() < deadline:
        time.sleep(0.05)
    assert p.exitcode == 0
    p.join()


def test_close():
    p = Fiber.Process(target=time.sleep, args=(0.3,))
    p.start()
    with pytest.raises(ValueError):
        p.close()
    p.join()
    p.close()
