# Module-level task functions (workers import them by reference).
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import random
import time


def f(x):
    return x * x


def f2(x, y):
    return x * y


def fy(x, y=1):
    return x * x * y


def func_add(a, b):
    return a + b


def func_error():
    raise ValueError


def sleep_worker(duration):
    time.sleep(duration)
    return duration


def sleep_steps(duration, step=0.05):
    """Sleeps in short steps: an interrupt of a thread (an asynchronous
    exception) only fires between Python bytecodes."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        time.sleep(step)
    return duration


def raise_runtime(msg):
    raise RuntimeError(msg)


class CustomError(Exception):
    def __init__(self, code, text):
        super().__init__(code, text)
        self.code = code
        self.text = text


def raise_custom(code):
    raise CustomError(code, "custom failure %d" % code)


def random_error_worker(i):
    """Fails 5% of the time (every 20th item, so the count is exact)."""
    time.sleep(0.001)
    if i % 20 == 7:
        raise ValueError("item %d failed" % i)
    return i


def crash_once_worker(args):
    """Kills its worker the first time it sees a marked item: the pool must
    run the item again on a fresh worker."""
    i, directory = args
    if i % 20 == 3:
        marker = os.path.join(directory, "crashed-%d" % i)
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(17)
    return i


def getpid(_=None):
    return os.getpid()


def write_current_pid(path):
    from gi.repository import Fiber
    with open(path, "w") as fp:
        fp.write(str(Fiber.current_process().pid))


def exit_with(code):
    raise SystemExit(code)


def unpicklable_result():
    return lambda: None


_initialized = []


def init_marker(value):
    _initialized.append(value)


def read_marker(_=None):
    return list(_initialized)


def is_inside(_):
    x, y = random.random(), random.random()
    return x * x + y * y < 1
