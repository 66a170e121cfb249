# Fiber's own test_pool.py behaviours against Fiber.Pool (process pools).
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import multiprocessing
import threading
import time

import pytest
from gi.repository import Fiber, GLib

import helpers
from helpers import f, f2, fy


def test_pool_basic():
    pool = Fiber.Pool(2)
    res = pool.map(f, [1, 2, 3])
    pool.terminate()
    pool.join()
    assert res == [1, 4, 9]


def test_pool_is_a_gobject():
    with Fiber.Pool(1) as pool:
        assert isinstance(pool, Fiber.Pool)
        assert pool.get_pool_type() == "process"
        assert pool.props.processes == 1


def test_pool_more():
    pool = Fiber.Pool(4)
    res = pool.map(f, [i for i in range(1000)])
    pool.terminate()
    pool.join()
    assert res == [i ** 2 for i in range(1000)]


def test_pool_apply():
    pool = Fiber.Pool(4)
    res_async = pool.apply_async(f, (42,))
    assert res_async.get() == 42 * 42
    assert pool.apply(f, (36,)) == 36 * 36
    assert pool.apply(fy, (36,), {"y": 2}) == 36 * 36 * 2
    pool.terminate()
    pool.join()


def test_pool_imap():
    pool = Fiber.Pool(4)
    res = list(pool.imap(f, [x for x in range(100)], 1))
    assert res == [x * x for x in range(100)]
    res = list(pool.imap_unordered(f, [x for x in range(100)], 1))
    assert len(res) == 100
    assert sorted(res) == [x * x for x in range(100)]
    pool.terminate()
    pool.join()


def test_pool_imap_chunks():
    with Fiber.Pool(2) as pool:
        assert list(pool.imap(f, range(53), 10)) == [x * x for x in range(53)]
        assert sorted(pool.imap_unordered(f, range(53), 7)) == [x * x for x in range(53)]
        it = pool.imap(helpers.sleep_worker, [2.0])
        with pytest.raises(multiprocessing.TimeoutError):
            it.next(timeout=0.05)
        assert it.next(timeout=60) == 2.0
        with pytest.raises(StopIteration):
            next(it)


def test_pool_starmap():
    pool = Fiber.Pool(4)
    assert pool.starmap(f, [(x,) for x in range(100)], 1) == [x * x for x in range(100)]
    async_res = pool.starmap_async(f, [(x,) for x in range(100)], 1)
    assert async_res.get() == [x * x for x in range(100)]
    pool.terminate()
    pool.join()


def test_pool_starmap2():
    pool = Fiber.Pool(4)
    assert pool.starmap(f2, [(x, x) for x in range(100)], 10) == [x * x for x in range(100)]
    async_res = pool.starmap_async(f, [(x,) for x in range(100)], 10)
    assert async_res.get() == [x * x for x in range(100)]
    pool.terminate()
    pool.join()


def test_pool_close():
    pool = Fiber.Pool(2)
    assert pool.map(f, [1, 2, 3]) == [1, 4, 9]
    pool.close()
    with pytest.raises(ValueError):
        pool.map(f, [1, 2, 3])
    with pytest.raises(ValueError):
        pool.apply_async(f, (1,))
    assert pool.join() is True


def test_pool_join_running_pool():
    with Fiber.Pool(1) as pool:
        with pytest.raises(ValueError):
            pool.join()


def test_pool_no_arguments():
    pool = Fiber.Pool()
    assert pool.get_processes() == Fiber.cpu_count()
    assert pool.map(f, range(10)) == [x * x for x in range(10)]
    pool.close()
    pool.join()


def test_many_jobs():
    """Fiber's race test of the pending table: batches of apply_async."""
    workers = 5
    pool = Fiber.Pool(workers)
    res = [None] * workers
    for _ in range(500 // workers):
        for j in range(workers):
            res[j] = pool.apply_async(helpers.sleep_worker, (0.001,))
        for j in range(workers):
            res[j].get()
    pool.terminate()
    pool.join()


def test_pi_estimation():
    with Fiber.Pool(processes=2) as pool:
        n = 20000
        pi = 4.0 * sum(pool.map(helpers.is_inside, range(n))) / n
        assert 3 < pi < 4


def test_error_handling():
    """A task failing 5% of the time: map reports the failure, apply_async
    reports exactly the failing items, the pool stays usable."""
    with Fiber.Pool(3) as pool:
        with pytest.raises(ValueError, match="item 7 failed"):
            pool.map(helpers.random_error_worker, range(300), chunksize=1)

        lock = threading.Lock()
        ok, failed = [], []
        done = threading.Event()

        def cb(value):
            with lock:
                ok.append(value)
                if len(ok) + len(failed) == 300:
                    done.set()

        def ecb(exc):
            with lock:
                failed.append(exc)
                if len(ok) + len(failed) == 300:
                    done.set()

        results = [pool.apply_async(helpers.random_error_worker, (i,),
                                    callback=cb, error_callback=ecb)
                   for i in range(300)]
        assert done.wait(120)
        for r in results:
            r.wait(60)
        assert sorted(ok) == [i for i in range(300) if i % 20 != 7]
        assert len(failed) == 15
        assert all(isinstance(e, ValueError) for e in failed)
        assert sum(1 for r in results if not r.successful()) == 15
        # nothing is called twice
        time.sleep(0.2)
        assert len(ok) + len(failed) == 300
        assert pool.apply(f, (3,)) == 9


def test_error_handling_worker_crash(tmp_path):
    """Fiber's resilient pool: a worker that dies mid-task is replaced and
    its item runs again, so the map still returns every result."""
    with Fiber.Pool(3) as pool:
        res = pool.map(helpers.crash_once_worker,
                       [(i, str(tmp_path)) for i in range(300)], chunksize=1)
        assert res == list(range(300))
        res = list(pool.imap_unordered(helpers.crash_once_worker,
                                       [(i + 1000, str(tmp_path)) for i in range(100)]))
        assert sorted(res) == list(range(1000, 1100))


def test_exception_type_and_remote_traceback():
    with Fiber.Pool(1) as pool:
        with pytest.raises(RuntimeError, match="boom") as info:
            pool.apply(helpers.raise_runtime, ("boom",))
        cause = info.value.__cause__
        assert cause is not None
        assert "raise_runtime" in str(cause)
        assert 'raise RuntimeError(msg)' in str(cause)

        with pytest.raises(helpers.CustomError) as info:
            pool.apply(helpers.raise_custom, (5,))
        assert info.value.code == 5

        r = pool.apply_async(helpers.raise_runtime, ("x",))
        r.wait()
        assert r.ready() and not r.successful()


def test_unpicklable_result():
    with Fiber.Pool(1) as pool:
        with pytest.raises(multiprocessing.pool.MaybeEncodingError):
            pool.apply(helpers.unpicklable_result)
        assert pool.apply(f, (2,)) == 4


def test_callbacks_exactly_once_without_main_loop():
    with Fiber.Pool(2) as pool:
        calls = []
        ev = threading.Event()

        def cb(v):
            calls.append(("ok", v, threading.current_thread() is threading.main_thread()))
            if len(calls) == 2:
                ev.set()

        def ecb(e):
            calls.append(("err", type(e), threading.current_thread() is threading.main_thread()))
            if len(calls) == 2:
                ev.set()

        pool.apply_async(f, (7,), callback=cb, error_callback=ecb)
        pool.apply_async(helpers.raise_runtime, ("no",), callback=cb, error_callback=ecb)
        # No GLib main loop runs anywhere: the result thread delivers.
        assert ev.wait(60)
        time.sleep(0.2)
        assert sorted(calls, key=repr) == sorted([("ok", 49, False),
                                                  ("err", RuntimeError, False)], key=repr)

        got = []
        r = pool.map_async(f, range(10), callback=got.append)
        assert r.get(60) == [x * x for x in range(10)]
        assert got == [[x * x for x in range(10)]]


def test_get_timeout():
    with Fiber.Pool(1) as pool:
        r = pool.apply_async(helpers.sleep_worker, (1.0,))
        with pytest.raises(multiprocessing.TimeoutError):
            r.get(timeout=0.05)
        assert not r.ready()
        with pytest.raises(ValueError):
            r.successful()
        assert r.get(timeout=60) == 1.0
        assert r.successful()


def test_initializer():
    with Fiber.Pool(2, initializer=helpers.init_marker, initargs=("ready",)) as pool:
        for value in pool.map(helpers.read_marker, range(4), chunksize=1):
            assert value == ["ready"]


def test_maxtasksperchild():
    with Fiber.Pool(1, maxtasksperchild=2) as pool:
        pids = [pool.apply(helpers.getpid) for _ in range(6)]
    assert len(set(pids)) >= 3


def test_bad_arguments():
    with pytest.raises(ValueError):
        Fiber.Pool(0)
    with pytest.raises(TypeError):
        Fiber.Pool(1, initializer=42)
    with pytest.raises(ValueError):
        Fiber.Pool(1, maxtasksperchild=0)
    with pytest.raises(GLib.Error):
        Fiber.Pool(1, pool_type="no-such-type")
    with Fiber.Pool(1) as pool:
        with pytest.raises(TypeError):
            pool.apply_async(42)
        with pytest.raises(ValueError):
            pool.map(f, [1, 2], chunksize=0)


def test_c_tasks_from_python():
    with Fiber.Pool(1) as pool:
        v = pool.apply("fiber.echo", GLib.Variant("(si)", ("a", 1)))
        assert v.unpack() == ("a", 1)
        res = pool.map("fiber.echo", GLib.Variant("ai", [1, 2, 3]))
        assert [x for x in res.unpack()] == [1, 2, 3]


def test_main_module_functions(tmp_path):
    """Functions of the main script travel like multiprocessing's spawn."""
    import subprocess
    import sys
    script = tmp_path / "script.py"
    script.write_text(
        "from gi.repository import Fiber\n"
        "def triple(x):\n"
        "    return 3 * x\n"
        "if __name__ == '__main__':\n"
        "    with Fiber.Pool(2) as pool:\n"
        "        print(pool.map(triple, range(5)))\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[0, 3, 6, 9, 12]"
