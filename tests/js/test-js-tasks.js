// test-js-tasks.js — JS tasks (exported functions of an ES module) from GJS
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// On process pools they run in GJS worker processes (gir/js/worker.js); on
// the in-process pools they run on this thread, from the main context,
// because GJS runs JavaScript only there.

import {test, assert, run, listDir, sleep} from './harness.js';

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Fiber from 'gi://Fiber?version=1.0';

import * as FiberJS from '../../gir/js/fiber.js';

const TASKS = Gio.File.new_for_uri(import.meta.url).get_parent()
    .get_child('tasks.js').get_uri();
const FIBER_ERROR = Fiber.error_quark();
const SELF = new Gio.Credentials().get_unix_pid();

async function withPool(type, processes, options, body) {
    const pool = FiberJS.newPool(type, processes, options);
    try {
        await body(pool);
    } finally {
        pool.close();
        pool.join(30000);
    }
}

for (const type of ['process', 'ndprocess']) {
    test(`${type}: call, map and starmap of JS functions in GJS workers`,
        () => withPool(type, 2, {modules: [TASKS]}, async pool => {
            assert.ok(FiberJS.runsJsInWorkers(pool), 'runs JS in workers');
            assert.equal(await FiberJS.call(pool, TASKS, 'add', 2, 3), 5, 'call');
            const items = [...Array(100).keys()];
            assert.deepEqual(await FiberJS.map(pool, TASKS, 'square', items),
                items.map(x => x * x), 'map');
            assert.deepEqual(await FiberJS.map(pool, TASKS, 'square', items, 1),
                items.map(x => x * x), 'map chunksize 1');
            assert.deepEqual(await FiberJS.starmap(pool, TASKS, 'add', [[1, 2], [3, 4], [5, 6]], 10),
                [3, 7, 11], 'starmap');
            assert.deepEqual(await FiberJS.call(pool, TASKS, 'describe', 'x', [1, 2, 3]),
                {name: 'x', n: 3, sum: 6, nested: {list: [1, 2, 3]}}, 'structured value');
        }));

    test(`${type}: JS tasks run in other processes, async ones are awaited`,
        () => withPool(type, 2, {}, async pool => {
            // The module was not preloaded: the worker imports it on first use.
            const pids = await FiberJS.map(pool, TASKS, 'pid', [...Array(20).keys()], 1);
            assert.ok(pids.every(pid => pid > 0 && pid !== SELF), 'worker pids');
            assert.equal(await FiberJS.call(pool, TASKS, 'later', 41), 42, 'async function');
            assert.equal(await FiberJS.call(pool, TASKS, 'wasMain'), false,
                'isMainModule() in a worker');
            assert.deepEqual(await FiberJS.map(pool, TASKS, 'later', [1, 2, 3]), [2, 3, 4],
                'map of an async function');
        }));

    test(`${type}: a JS exception arrives as a GLib.Error with the remote message`,
        () => withPool(type, 1, {modules: [TASKS]}, async pool => {
            const e = await assert.rejects(FiberJS.call(pool, TASKS, 'fail', 'kaput in the worker'),
                {domain: FIBER_ERROR, code: Fiber.Error.TASK_FAILED,
                    message: /^Error: kaput in the worker\n/});
            assert.ok(/fail@.*tasks\.js/.test(e.message), `remote stack in ${e.message}`);
            await assert.rejects(FiberJS.map(pool, TASKS, 'fail', ['one', 'two']),
                {domain: FIBER_ERROR, code: Fiber.Error.TASK_FAILED, message: /one|two/});
            await assert.rejects(FiberJS.call(pool, TASKS, 'noSuchFunction'),
                {domain: FIBER_ERROR, code: Fiber.Error.TASK_FAILED,
                    message: /does not export a function “noSuchFunction”/});
            await assert.rejects(FiberJS.call(pool, `${TASKS}.missing.js`, 'add'),
                {domain: FIBER_ERROR, code: Fiber.Error.TASK_FAILED});
            await assert.rejects(FiberJS.call(pool, TASKS, 'notJson'),
                {domain: FIBER_ERROR, code: Fiber.Error.TASK_FAILED, message: /BigInt/});
            // The worker survives its tasks' exceptions.
            assert.equal(await FiberJS.call(pool, TASKS, 'add', 1, 1), 2, 'after failures');
        }));

    test(`${type}: JS tasks after close fail with CLOSED`, async () => {
        const pool = FiberJS.newPool(type, 1, {modules: [TASKS]});
        assert.equal(await FiberJS.call(pool, TASKS, 'add', 1, 2), 3, 'before close');
        pool.close();
        await assert.rejects(FiberJS.call(pool, TASKS, 'add', 1, 2),
            {domain: FIBER_ERROR, code: Fiber.Error.CLOSED});
        assert.ok(pool.join(30000), 'join');
    });
}

test('ndprocess workers may start pools, process workers may not', async () => {
    await withPool('ndprocess', 1, {modules: [TASKS]}, async pool => {
        assert.deepEqual(await FiberJS.call(pool, TASKS, 'nestedSquares', [1, 2, 3]), [1, 4, 9],
            'nested pool in an ndprocess worker');
    });
    await withPool('process', 1, {modules: [TASKS]}, async pool => {
        await assert.rejects(FiberJS.call(pool, TASKS, 'nestedSquares', [1]),
            {domain: FIBER_ERROR, code: Fiber.Error.TASK_FAILED,
                message: /daemonic processes are not allowed to have children/});
    });
});

test('process: three workers run three JS tasks at once', () =>
    withPool('process', 3, {modules: [TASKS]}, async pool => {
        // With chunksize 1 no item waits behind a busy worker: each task
        // waits until all three have started, in three workers.
        const dir = GLib.build_filenamev([GLib.getenv('TMPDIR'), 'barrier']);
        GLib.mkdir_with_parents(dir, 0o700);
        try {
            const pids = await FiberJS.starmap(pool, TASKS, 'barrier',
                [[dir, 3], [dir, 3], [dir, 3]], 1);
            assert.equal(new Set(pids).size, 3, `three worker pids (${pids})`);
        } finally {
            for (const name of listDir(dir))
                GLib.unlink(GLib.build_filenamev([dir, name]));
            GLib.rmdir(dir);
        }
    }));

test('process: a module that cannot be imported fails its tasks, not the workers', () =>
    withPool('process', 1, {modules: [`${TASKS}.missing.js`, TASKS]}, async pool => {
        await assert.rejects(FiberJS.call(pool, `${TASKS}.missing.js`, 'add', 1, 2),
            {domain: FIBER_ERROR, code: Fiber.Error.TASK_FAILED, message: /missing\.js/});
        assert.equal(await FiberJS.call(pool, TASKS, 'add', 1, 2), 3, 'other modules');
    }));

test('process: a JS initializer runs in every worker; maxtasksperchild', () =>
    withPool('process', 2, {modules: [TASKS], jsInitializer: [TASKS, 'setup', ['ready']],
        maxtasksperchild: 2}, async pool => {
        const values = await FiberJS.map(pool, TASKS, 'setupValue', [...Array(10).keys()], 1);
        assert.deepEqual(values, Array(10).fill('ready'), 'initialized workers');
        // Each worker is replaced after two tasks: more than two pids.
        const pids = await FiberJS.map(pool, TASKS, 'pid', [...Array(10).keys()], 1);
        assert.ok(new Set(pids).size > 2, `replaced workers (${new Set(pids).size} pids)`);
    }));

test('thread: a JS initializer is a clear error', () => {
    assert.throws(() => FiberJS.newPool('thread', 1, {jsInitializer: [TASKS, 'setup', [1]]}),
        {domain: FIBER_ERROR, code: Fiber.Error.NOT_SUPPORTED, message: /process pool/});
});

test('process: interrupt fails a running JS task once it returns', () =>
    withPool('process', 1, {modules: [TASKS]}, async pool => {
        const running = FiberJS.call(pool, TASKS, 'pause', 0.5, 1);
        let settled = false;
        const outcome = assert.rejects(running,
            {domain: FIBER_ERROR, code: Fiber.Error.INTERRUPTED}).finally(() => {
            settled = true;
        });
        while (!settled) {
            await sleep(50);
            pool.interrupt();
        }
        await outcome;
        assert.equal(await FiberJS.call(pool, TASKS, 'add', 2, 2), 4, 'after interrupt');
    }));

test('process: a JS task that blocks for many heartbeats is not a lost worker', () =>
    withPool('process', 1, {modules: [TASKS], heartbeat_interval: 100}, async pool => {
        // Silent for five intervals (0.5 s) would mean lost; the C runtime's
        // watchdog thread keeps beating while JavaScript holds the main thread.
        const [first] = await FiberJS.map(pool, TASKS, 'pauseThenPid', [1.2], 1);
        assert.equal(await FiberJS.call(pool, TASKS, 'pid'), first, 'the same worker');
    }));

test('process: a worker killed in the middle of a map: complete results, once each', () =>
    withPool('process', 2, {modules: [TASKS]}, async pool => {
        const dir = GLib.build_filenamev([GLib.getenv('TMPDIR'), 'die-once']);
        GLib.mkdir_with_parents(dir, 0o700);
        try {
            const items = [...Array(12).keys()];
            // Items 3 and 8 kill their worker the first time they run.
            const out = await FiberJS.starmap(pool, TASKS, 'dieOnce',
                items.map(x => [dir, x, x === 3 || x === 8]), 1);
            assert.deepEqual(out, items.map(x => x * 10), 'every result, in order');
            assert.deepEqual(listDir(dir).sort(), ['3', '8'], 'each killed once');
            assert.equal(await FiberJS.call(pool, TASKS, 'add', 1, 2), 3, 'replaced workers serve');
        } finally {
            for (const name of listDir(dir))
                GLib.unlink(GLib.build_filenamev([dir, name]));
            GLib.rmdir(dir);
        }
    }));

test('process: terminate while a JS task runs rejects it with CLOSED', async () => {
    const pool = FiberJS.newPool('process', 1, {modules: [TASKS]});
    const pending = FiberJS.call(pool, TASKS, 'pause', 20, 1);
    await new Promise(resolve => GLib.timeout_add(GLib.PRIORITY_DEFAULT, 300, () => {
        resolve();
        return GLib.SOURCE_REMOVE;
    }));
    pool.terminate();
    await assert.rejects(pending, {domain: FIBER_ERROR, code: Fiber.Error.CLOSED});
    assert.ok(pool.join(30000), 'join');
});

for (const type of ['thread', 'coroutine']) {
    test(`${type}: JS tasks run on the main thread, with the same results and errors`,
        () => withPool(type, 2, {}, async pool => {
            assert.ok(!FiberJS.runsJsInWorkers(pool), 'runs JS here');
            assert.equal(await FiberJS.call(pool, TASKS, 'add', 2, 3), 5, 'call');
            assert.deepEqual(await FiberJS.map(pool, TASKS, 'square', [1, 2, 3]), [1, 4, 9], 'map');
            assert.deepEqual(await FiberJS.starmap(pool, TASKS, 'add', [[1, 2], [3, 4]]), [3, 7],
                'starmap');
            assert.equal(await FiberJS.call(pool, TASKS, 'later', 1), 2, 'async function');
            assert.equal(await FiberJS.call(pool, TASKS, 'pid'), SELF, 'runs in this process');
            assert.deepEqual(await FiberJS.call(pool, TASKS, 'describe', 'y', [4]),
                {name: 'y', n: 1, sum: 4, nested: {list: [4]}}, 'structured value');
            await assert.rejects(FiberJS.call(pool, TASKS, 'fail', 'kaput here'),
                {domain: FIBER_ERROR, code: Fiber.Error.TASK_FAILED, message: /^Error: kaput here\n/});
            // C tasks still run on the pool's own threads meanwhile.
            const echoed = await pool.apply_async('fiber.echo', new GLib.Variant('(i)', [9]), null);
            assert.deepEqual(echoed.deepUnpack(), [9], 'C task');
            pool.close();
            await assert.rejects(FiberJS.call(pool, TASKS, 'add', 1, 2),
                {domain: FIBER_ERROR, code: Fiber.Error.CLOSED});
        }));

    test(`${type}: a JS function never runs on a pool thread`, () => withPool(type, 1, {}, async pool => {
        assert.throws(() => pool.apply_func(new GLib.Variant('(i)', [1]), () => null),
            {domain: FIBER_ERROR, code: Fiber.Error.NOT_SUPPORTED, message: /cannot run on the threads/});
        // A JS function registered as a task in this process: GJS refuses to
        // call it from the pool thread (a critical on stderr) and the task
        // fails instead of crashing the process.
        let called = false;
        Fiber.task_register('test.js-registered', () => {
            called = true;
            return new GLib.Variant('()', []);
        });
        try {
            await assert.rejects(pool.apply_async('test.js-registered', null, null),
                {domain: FIBER_ERROR, code: Fiber.Error.TASK_FAILED});
        } finally {
            Fiber.task_unregister('test.js-registered');
        }
        assert.ok(!called, 'the JS function was not called on the pool thread');
    }));
}

test('isMainModule()', () => {
    assert.ok(FiberJS.isMainModule(import.meta), 'this test program');
    assert.ok(!FiberJS.isMainModule({url: TASKS}), 'an imported module');
});

run();
