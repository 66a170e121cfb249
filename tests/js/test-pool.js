// test-pool.js — C tasks on every local pool type from GJS
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import {test, assert, run, sleep, tmpEntries} from './harness.js';

import GLib from 'gi://GLib';
import Fiber from 'gi://Fiber?version=1.0';

import * as FiberJS from '../../gir/js/fiber.js';

const TYPES = ['thread', 'coroutine', 'process', 'ndprocess'];
const FIBER_ERROR = Fiber.error_quark();

function ints(variant) {
    return variant.deepUnpack().map(v => v.deepUnpack());
}

async function withPool(type, processes, body) {
    const pool = FiberJS.newPool(type, processes);
    try {
        await body(pool);
    } finally {
        pool.terminate();
        pool.join(30000);
    }
}

for (const type of TYPES) {
    test(`${type}: apply and apply_async (promise)`, () => withPool(type, 2, async pool => {
        assert.equal(pool.get_pool_type(), type, 'pool type');
        const sync = pool.apply('fiber.echo', new GLib.Variant('(is)', [7, 'seven']));
        assert.deepEqual(sync.deepUnpack(), [7, 'seven'], 'apply');
        const async = await pool.apply_async('fiber.echo', new GLib.Variant('(i)', [3]), null);
        assert.deepEqual(async.deepUnpack(), [3], 'apply_async');
        const unit = await pool.apply_async('fiber.noop', null, null);
        assert.equal(unit.get_type_string(), '()', 'noop result');
    }));

    test(`${type}: map over [1,2,3] and over 1000 items`, () => withPool(type, 2, async pool => {
        assert.deepEqual(ints(pool.map('fiber.echo', new GLib.Variant('ai', [1, 2, 3]), 0)),
            [1, 2, 3], 'map');
        const items = [...Array(1000).keys()];
        const result = await pool.map_async('fiber.echo', new GLib.Variant('ai', items), 0, null);
        assert.deepEqual(ints(result), items, 'map_async over 1000 items');
        const chunked = await pool.map_async('fiber.echo', new GLib.Variant('ai', items), 7, null);
        assert.deepEqual(ints(chunked), items, 'map_async with chunksize 7');
    }));

    test(`${type}: starmap with chunksize 1 and 10`, () => withPool(type, 2, async pool => {
        const tuples = [...Array(25).keys()].map(i => [i, `s${i}`]);
        for (const chunksize of [1, 10]) {
            const result = await pool.starmap_async('fiber.echo',
                new GLib.Variant('a(is)', tuples), chunksize, null);
            assert.deepEqual(result.deepUnpack().map(v => v.deepUnpack()), tuples,
                `starmap chunksize ${chunksize}`);
        }
        assert.throws(() => pool.starmap('fiber.echo', new GLib.Variant('ai', [1]), 1),
            {domain: FIBER_ERROR});
    }));

    test(`${type}: imap in order, imap_unordered as a set`, () => withPool(type, 2, pool => {
        const items = [...Array(50).keys()];
        const ordered = [...FiberJS.results(pool.imap('fiber.echo',
            new GLib.Variant('ai', items), 1), 30000)];
        assert.deepEqual(ordered.map(([i]) => i), items, 'imap indexes');
        assert.deepEqual(ordered.map(([, v]) => v.deepUnpack()), items, 'imap values');
        const unordered = [...FiberJS.results(pool.imap_unordered('fiber.echo',
            new GLib.Variant('ai', items), 3), 30000)];
        assert.deepEqual(unordered.map(([, v]) => v.deepUnpack()).sort((a, b) => a - b),
            items, 'imap_unordered values');
        for (const [i, v] of unordered)
            assert.equal(v.deepUnpack(), i, 'imap_unordered index');
    }));

    test(`${type}: imap with for await (iterate), the main loop keeps running`,
        () => withPool(type, 2, async pool => {
            let ticks = 0;
            const ticker = GLib.timeout_add(GLib.PRIORITY_DEFAULT, 5, () => {
                ticks++;
                return GLib.SOURCE_CONTINUE;
            });
            try {
                const items = [...Array(6).keys()].map(() => [0.05]);
                const seen = [];
                for await (const [index, value] of FiberJS.iterate(pool.imap('fiber.sleep',
                    new GLib.Variant('a(d)', items), 1)))
                    seen.push([index, value.get_type_string()]);
                assert.deepEqual(seen, items.map((_, i) => [i, '()']), 'items in order');
                assert.ok(ticks > 0, 'the main loop ran while waiting');
                const unordered = [];
                for await (const [index] of FiberJS.iterate(pool.imap_unordered('fiber.echo',
                    new GLib.Variant('ai', [...Array(20).keys()]), 2)))
                    unordered.push(index);
                assert.deepEqual(unordered.sort((a, b) => a - b), [...Array(20).keys()], 'unordered');
                await assert.rejects((async () => {
                    for await (const item of FiberJS.iterate(pool.imap('fiber.fail',
                        new GLib.Variant('a(s)', [['imap failure']]), 1)))
                        void item;
                })(), {domain: FIBER_ERROR, code: Fiber.Error.TASK_FAILED, message: /imap failure/});
            } finally {
                GLib.source_remove(ticker);
            }
        }));

    test(`${type}: a failed task rejects with a GLib.Error carrying its message`,
        () => withPool(type, 2, async pool => {
            const e = await assert.rejects(
                pool.apply_async('fiber.fail', new GLib.Variant('(s)', ['boom in a task']), null),
                {domain: FIBER_ERROR, code: Fiber.Error.TASK_FAILED, message: /boom in a task/});
            assert.ok(e instanceof GLib.Error, 'a GLib.Error');
            // In a map, the first failing item fails the whole call.
            await assert.rejects(pool.map_async('fiber.fail',
                new GLib.Variant('a(s)', [['one'], ['two']]), 1, null),
            {domain: FIBER_ERROR, code: Fiber.Error.TASK_FAILED, message: /one|two/});
            assert.throws(() => pool.apply('fiber.fail', new GLib.Variant('(s)', ['sync'])),
                {domain: FIBER_ERROR, code: Fiber.Error.TASK_FAILED, message: /sync/});
            // The pool still works after failures.
            assert.deepEqual((await pool.apply_async('fiber.echo',
                new GLib.Variant('(i)', [1]), null)).deepUnpack(), [1], 'after failures');
        }));

    test(`${type}: an unknown task is an error, not a hang`, () => withPool(type, 1, async pool => {
        await assert.rejects(pool.apply_async('no.such.task', null, null),
            {domain: FIBER_ERROR, code: Fiber.Error.UNKNOWN_TASK, message: /no\.such\.task/});
    }));

    test(`${type}: interrupt fails the running task, the pool stays usable`,
        () => withPool(type, 1, async pool => {
            const running = pool.apply_async('fiber.sleep', new GLib.Variant('(d)', [30]), null);
            // interrupt() affects the tasks running at that moment: repeat
            // it until the task (once started, under any load) fails.
            let settled = false;
            const outcome = assert.rejects(running,
                {domain: FIBER_ERROR, code: Fiber.Error.INTERRUPTED}).finally(() => {
                settled = true;
            });
            while (!settled) {
                await sleep(100);
                pool.interrupt();
            }
            await outcome;
            const after = await pool.apply_async('fiber.echo', new GLib.Variant('(i)', [5]), null);
            assert.deepEqual(after.deepUnpack(), [5], 'after interrupt');
        }));

    test(`${type}: close, then new work fails with CLOSED; join`, async () => {
        const pool = FiberJS.newPool(type, 2);
        const pending = pool.map_async('fiber.echo', new GLib.Variant('ai', [1, 2, 3]), 1, null);
        pool.close();
        assert.ok(pool.is_closed(), 'is_closed');
        // Work queued before close still completes.
        assert.deepEqual(ints(await pending), [1, 2, 3], 'queued work');
        await assert.rejects(pool.apply_async('fiber.echo', null, null),
            {domain: FIBER_ERROR, code: Fiber.Error.CLOSED});
        assert.throws(() => pool.map('fiber.echo', new GLib.Variant('ai', [1]), 0),
            {domain: FIBER_ERROR, code: Fiber.Error.CLOSED});
        assert.ok(pool.join(30000), 'join');
    });
}

test('fiber.sleep tasks complete on every type', async () => {
    for (const type of TYPES) {
        await withPool(type, 2, async pool => {
            const result = await pool.map_async('fiber.sleep',
                new GLib.Variant('a(d)', [[0.05], [0.05], [0.05], [0.05]]), 1, null);
            assert.equal(result.n_children(), 4, `${type}: results`);
        });
    }
});

test('Fiber.Pool.new() without fiber.js: C workers (fiber-worker)', async () => {
    const pool = Fiber.Pool.new('process', 2);
    try {
        assert.ok(tmpEntries().length > 0, 'the pool keeps its socket in the private TMPDIR');
        const result = await pool.map_async('fiber.echo', new GLib.Variant('ai', [4, 5]), 1, null);
        assert.deepEqual(ints(result), [4, 5], 'map_async');
    } finally {
        pool.close();
        assert.ok(pool.join(30000), 'join');
    }
});

test('newPool(null) picks the default type (FIBER_POOL_TYPE, else process)', async () => {
    for (const [env, expected] of [[null, 'process'], ['thread', 'thread']]) {
        if (env === null)
            GLib.unsetenv('FIBER_POOL_TYPE');
        else
            GLib.setenv('FIBER_POOL_TYPE', env, true);
        try {
            await withPool(null, 1, async pool => {
                assert.equal(pool.get_pool_type(), expected, 'pool type');
                assert.equal(FiberJS.defaultPoolType(), expected, 'defaultPoolType()');
                const result = await pool.apply_async('fiber.echo', new GLib.Variant('(i)', [1]), null);
                assert.deepEqual(result.deepUnpack(), [1], 'apply_async');
            });
        } finally {
            GLib.unsetenv('FIBER_POOL_TYPE');
        }
    }
});

test('an unknown pool type is a GLib.Error', () => {
    assert.throws(() => FiberJS.newPool('no-such-type', 1),
        {domain: FIBER_ERROR, code: Fiber.Error.INVALID_ARGUMENT, message: /no-such-type/});
});

run();
