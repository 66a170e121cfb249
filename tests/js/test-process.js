// test-process.js — Fiber.Process from GJS, with C and JS targets
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import {test, assert, run, sleep} from './harness.js';

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Fiber from 'gi://Fiber?version=1.0';

import * as FiberJS from '../../gir/js/fiber.js';

const TASKS = Gio.File.new_for_uri(import.meta.url).get_parent()
    .get_child('tasks.js').get_uri();
const FIBER_ERROR = Fiber.error_quark();

function exitcode(process) {
    const [exited, code] = process.get_exitcode();
    return exited ? code : null;
}

// Before FiberJS.init(): a process re-executes nothing of ours, it runs the
// generic fiber-worker (FIBER_WORKER), so C targets only.
test('a C target before init(): exit codes 0 and 1', () => {
    const ok = Fiber.Process.new('fiber.echo', new GLib.Variant('(i)', [1]));
    assert.equal(ok.pid, 0, 'pid before start');
    ok.start();
    assert.ok(ok.pid > 0, 'pid after start');
    assert.ok(ok.join(30000), 'join');
    assert.equal(exitcode(ok), 0, 'exit code');

    const failing = Fiber.Process.new('fiber.fail', new GLib.Variant('(s)', ['target failed']));
    failing.start();
    assert.ok(failing.join(30000), 'join');
    assert.equal(exitcode(failing), 1, 'exit code of a failed target');
    assert.throws(() => failing.start(), {domain: FIBER_ERROR});
});

test('newProcess() before init() is a clear error', () => {
    assert.throws(() => FiberJS.newProcess(TASKS, 'nothing'),
        {domain: FIBER_ERROR, code: Fiber.Error.STATE, message: /init\(\)/});
});

test('JS targets after init(): exit codes, join timeout, terminate, sentinel', async () => {
    FiberJS.init([TASKS]);

    const ok = FiberJS.newProcess(TASKS, 'nothing');
    ok.start();
    assert.ok(ok.join(30000), 'join');
    assert.equal(exitcode(ok), 0, 'exit code of a JS target that returned');

    const failing = FiberJS.newProcess(TASKS, 'fail', ['thrown in the child']);
    failing.start();
    assert.ok(failing.join(30000), 'join');
    assert.equal(exitcode(failing), 1, 'exit code of a JS target that threw');

    const named = FiberJS.newProcess(TASKS, 'expectName', ['js-child'], {name: 'js-child'});
    named.start();
    assert.ok(named.join(30000), 'join');
    assert.equal(exitcode(named), 0, 'the child sees the name the parent gave');
    const misnamed = FiberJS.newProcess(TASKS, 'expectName', ['js-child'], {name: 'other'});
    misnamed.start();
    assert.ok(misnamed.join(30000), 'join');
    assert.equal(exitcode(misnamed), 1, 'a name mismatch fails the target');

    const slow = FiberJS.newProcess(TASKS, 'pause', [60]);
    slow.start();
    assert.ok(slow.is_alive(), 'is_alive while running');
    assert.equal(exitcode(slow), null, 'no exit code while running');
    const start = GLib.get_monotonic_time();
    assert.ok(!slow.join(200), 'join with a timeout returns FALSE while running');
    assert.ok(GLib.get_monotonic_time() - start < 20 * 1e6, 'join(200) returned');
    assert.ok(Fiber.active_children().some(p => p.pid === slow.pid), 'in active_children');

    // The sentinel becomes readable when the process ends.
    const ended = new Promise(resolve => {
        GLib.unix_fd_add_full(GLib.PRIORITY_DEFAULT, slow.get_sentinel(), GLib.IOCondition.IN,
            () => {
                resolve(true);
                return GLib.SOURCE_REMOVE;
            });
    });
    await sleep(50);
    slow.terminate();
    assert.ok(await ended, 'sentinel readable');
    assert.ok(slow.join(30000), 'join after terminate');
    assert.equal(exitcode(slow), -15, 'killed by SIGTERM');
    assert.ok(!slow.is_alive(), 'not alive');
    assert.equal(Fiber.active_children().length, 0, 'no active children');
});

test('after init(), Fiber.Pool.new("process") starts GJS workers', async () => {
    FiberJS.init([TASKS]);
    const pool = Fiber.Pool.new('process', 1);
    try {
        assert.equal(await FiberJS.call(pool, TASKS, 'add', 20, 22), 42, 'JS task');
    } finally {
        pool.close();
        assert.ok(pool.join(30000), 'join');
    }
});

run();
