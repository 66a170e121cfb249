# The multiprocessing API on every local pool type: the thread and
# coroutine pools call Python callables directly (nothing is pickled), the
# process pools run them in Python workers.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import multiprocessing
import threading
import time

import pytest
from gi.repository import Fiber, GLib

import helpers
from helpers import f, f2, fy

LOCAL_TYPES = ["thread", "coroutine", "process", "ndprocess"]
IN_PROCESS_TYPES = ["thread", "coroutine"]


@pytest.fixture(params=LOCAL_TYPES)
def pool_type(request):
    if request.param not in Fiber.Pool.list_types():
        pytest.skip("pool type %s is not available" % request.param)
    return request.param


def test_map_apply_imap_starmap(pool_type):
    with Fiber.Pool(2, pool_type=pool_type) as pool:
        assert pool.get_pool_type() == pool_type
        assert pool.map(f, range(1000)) == [x * x for x in range(1000)]
        assert pool.map(f, range(20), chunksize=1) == [x * x for x in range(20)]
        assert pool.apply(fy, (6,), {"y": 2}) == 72
        assert pool.apply_async(f, (7,)).get(60) == 49
        assert list(pool.imap(f, range(30), 4)) == [x * x for x in range(30)]
        assert sorted(pool.imap_unordered(f, range(30))) == [x * x for x in range(30)]
        assert pool.starmap(f2, [(x, x) for x in range(50)], 10) == [x * x for x in range(50)]
        assert pool.starmap_async(f2, [(x, 2) for x in range(9)], 1).get(60) == \
            [2 * x for x in range(9)]
        assert pool.map(f, []) == []


def test_exception_type(pool_type):
    with Fiber.Pool(1, pool_type=pool_type) as pool:
        with pytest.raises(helpers.CustomError) as info:
            pool.apply(helpers.raise_custom, (3,))
        assert info.value.code == 3
        with pytest.raises(RuntimeError, match="boom"):
            pool.map(helpers.raise_runtime, ["boom"])
        with pytest.raises(RuntimeError, match="late"):
            list(pool.imap(helpers.raise_runtime, ["late"]))
        # the pool carries on
        assert pool.apply(f, (4,)) == 16


def test_callbacks_exactly_once(pool_type):
    n = 60
    lock = threading.Lock()
    ok, failed = [], []
    done = threading.Event()

    def count():
        if len(ok) + len(failed) == n:
            done.set()

    def cb(value):
        with lock:
            ok.append(value)
            count()

    def ecb(exc):
        with lock:
            failed.append(exc)
            count()

    with Fiber.Pool(2, pool_type=pool_type) as pool:
        results = [pool.apply_async(helpers.random_error_worker, (i,),
                                    callback=cb, error_callback=ecb)
                   for i in range(n)]
        # no GLib main loop runs: the callbacks come from the result thread
        # (or the pool's own threads for in-process pools)
        assert done.wait(60)
        for r in results:
            assert r.wait(60)
        time.sleep(0.1)
    assert sorted(ok) == [i for i in range(n) if i % 20 != 7]
    assert len(failed) == 3 and all(isinstance(e, ValueError) for e in failed)
    assert sum(1 for r in results if not r.successful()) == 3


def test_get_timeout_and_close(pool_type):
    pool = Fiber.Pool(1, pool_type=pool_type)
    r = pool.apply_async(helpers.sleep_worker, (0.5,))
    with pytest.raises(multiprocessing.TimeoutError):
        r.get(timeout=0.01)
    assert r.get(timeout=60) == 0.5
    pool.close()
    with pytest.raises(ValueError):
        pool.apply_async(f, (1,))
    assert pool.join(60) is True


def test_interrupt(pool_type):
    with Fiber.Pool(1, pool_type=pool_type) as pool:
        r = pool.apply_async(helpers.sleep_steps, (30,))
        time.sleep(1.0)
        t0 = time.monotonic()
        pool.interrupt()
        with pytest.raises(Fiber.TaskInterrupted):
            r.get(timeout=20)
        assert time.monotonic() - t0 < 15
        # the pool stays usable
        assert pool.apply(f, (5,)) == 25


@pytest.mark.parametrize("pool_type", IN_PROCESS_TYPES)
def test_in_process_pools_do_not_pickle(pool_type):
    """Closures and lambdas, which do not pickle, run in in-process pools."""
    seen = []
    with Fiber.Pool(2, pool_type=pool_type) as pool:
        assert pool.map(lambda x: x + 1, range(10)) == list(range(1, 11))
        assert pool.apply(seen.append, ("here",)) is None
        marker = object()
        assert pool.apply(lambda: marker) is marker
    assert seen == ["here"]


@pytest.mark.parametrize("pool_type", IN_PROCESS_TYPES)
def test_in_process_terminate_fails_queued_calls(pool_type):
    pool = Fiber.Pool(1, pool_type=pool_type)
    first = pool.apply_async(helpers.sleep_worker, (0.3,))
    queued = [pool.apply_async(f, (i,)) for i in range(5)]
    time.sleep(0.05)
    pool.terminate()
    assert pool.join(60)
    for r in queued:
        assert r.wait(60)
        if not r.successful():
            with pytest.raises(Fiber.PoolClosedError):
                r.get()
    assert first.wait(60)


def test_process_pool_needs_picklable_callables():
    with Fiber.Pool(1, pool_type="process") as pool:
        with pytest.raises(Exception):
            pool.apply(lambda: 1)
        assert pool.apply(f, (3,)) == 9


@pytest.mark.parametrize("pool_type", ["process", "ndprocess"])
def test_interrupt_c_task_in_python_worker(pool_type):
    """A registered C task run by name in a Python worker is interrupted
    too (through its GCancellable), also after Python tasks ran there."""
    with Fiber.Pool(1, pool_type=pool_type) as pool:
        assert pool.apply(f, (2,)) == 4
        r = pool.apply_async("fiber.sleep", GLib.Variant("(d)", (30.0,)))
        time.sleep(1.0)
        t0 = time.monotonic()
        pool.interrupt()
        with pytest.raises(Fiber.TaskInterrupted):
            r.get(timeout=20)
        assert time.monotonic() - t0 < 15
        assert pool.apply(f, (3,)) == 9
        # and a Python task after it is interrupted as before
        r = pool.apply_async(helpers.sleep_worker, (30,))
        time.sleep(1.0)
        pool.interrupt()
        with pytest.raises(Fiber.TaskInterrupted):
            r.get(timeout=20)
