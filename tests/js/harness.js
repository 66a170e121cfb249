// harness.js — a small test runner for the GJS tests of fiber-glib
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
//   import {test, assert, run} from './harness.js';   // import it first
//   test('map over a thread pool', async () => { … });
//   run();                                             // exits
//
// Tests run one after the other on the default main loop; each has a guard
// timeout.  After every test the runner checks that no child process and
// no file in the private TMPDIR is left behind (with a grace period).  It
// prints TAP and exits with status 1 when a test failed.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import System from 'system';

// Importing this module first points TMPDIR at a private directory, before
// anything asks GLib for it, so leaked socket files and directories show.
const baseTmp = GLib.getenv('TMPDIR') || '/tmp';
const tmpdir = GLib.build_filenamev([baseTmp, `fiber-js-${GLib.uuid_string_random()}`]);
// (not GLib.dir_make_tmp(): it would fix g_get_tmp_dir() to the old TMPDIR)
Gio.File.new_for_path(tmpdir).make_directory(null);
GLib.setenv('TMPDIR', tmpdir, true);

/** Guard timeout of one test, in seconds. */
const GUARD_SECONDS = 60;

const tests = [];

const selfPid = Number(GLib.file_read_link('/proc/self'));

/**
 * Registers a test.
 *
 * @param {string} name what it checks
 * @param {Function} fn (async) body; throws on failure
 */
export function test(name, fn) {
    tests.push({name, fn});
}

class AssertionError extends Error {
    constructor(message) {
        super(message);
        this.name = 'AssertionError';
    }
}

function show(value) {
    try {
        return JSON.stringify(value);
    } catch {
        return String(value);
    }
}

function checkError(e, {domain, code, message} = {}) {
    if (domain !== undefined) {
        if (!(e instanceof GLib.Error))
            throw new AssertionError(`expected a GLib.Error, got ${e}`);
        if (!e.matches(domain, code ?? e.code)) {
            throw new AssertionError(`expected error ${GLib.quark_to_string(domain)} ${code}, ` +
                `got ${GLib.quark_to_string(e.domain)} ${e.code}: ${e.message}`);
        }
    }
    if (message !== undefined && !message.test(e.message))
        throw new AssertionError(`error message ${show(e.message)} does not match ${message}`);
    return e;
}

export const assert = {
    ok(value, what = 'value') {
        if (!value)
            throw new AssertionError(`${what} is not true: ${show(value)}`);
    },
    equal(actual, expected, what = 'value') {
        if (actual !== expected)
            throw new AssertionError(`${what}: expected ${show(expected)}, got ${show(actual)}`);
    },
    deepEqual(actual, expected, what = 'value') {
        if (show(actual) !== show(expected))
            throw new AssertionError(`${what}: expected ${show(expected)}, got ${show(actual)}`);
    },
    /** Awaits @promise and returns the error it rejected with. */
    async rejects(promise, expected = {}) {
        try {
            await promise;
        } catch (e) {
            return checkError(e, expected);
        }
        throw new AssertionError('expected a rejection, the promise resolved');
    },
    /** Calls @fn and returns the error it threw. */
    throws(fn, expected = {}) {
        try {
            fn();
        } catch (e) {
            return checkError(e, expected);
        }
        throw new AssertionError('expected an exception, none was thrown');
    },
};

/**
 * Resolves after @msec milliseconds, running the main loop meanwhile.
 *
 * @param {number} msec delay
 * @returns {Promise<void>}
 */
export function sleep(msec) {
    return new Promise(resolve => GLib.timeout_add(GLib.PRIORITY_DEFAULT, msec, () => {
        resolve();
        return GLib.SOURCE_REMOVE;
    }));
}

function readStat(pid) {
    try {
        const [, bytes] = GLib.file_get_contents(`/proc/${pid}/stat`);
        const text = new TextDecoder().decode(bytes);
        // comm may contain spaces and parentheses: parse after the last ')'
        const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
        return {state: fields[0], ppid: Number(fields[1])};
    } catch {
        return null;
    }
}

/** The pids of every live descendant of this process (from /proc). */
export function descendants() {
    const parents = new Map();
    for (const name of listDir('/proc')) {
        if (!/^\d+$/.test(name))
            continue;
        const stat = readStat(name);
        if (stat && stat.state !== 'Z' && stat.state !== 'X')
            parents.set(Number(name), stat.ppid);
    }
    const self = new Set([selfPid]);
    const found = [];
    let grew = true;
    while (grew) {
        grew = false;
        for (const [pid, ppid] of parents) {
            if (self.has(ppid) && !self.has(pid)) {
                self.add(pid);
                found.push(pid);
                grew = true;
            }
        }
    }
    return found;
}

/** The names of the entries of the directory @path. */
export function listDir(path) {
    const names = [];
    const enumerator = Gio.File.new_for_path(path).enumerate_children('standard::name',
        Gio.FileQueryInfoFlags.NOFOLLOW_SYMLINKS, null);
    for (let info = enumerator.next_file(null); info !== null; info = enumerator.next_file(null))
        names.push(info.get_name());
    enumerator.close(null);
    return names;
}

/** The names in the private TMPDIR of this test program. */
export function tmpEntries() {
    return listDir(tmpdir);
}

/**
 * Fails unless no child process and no file in TMPDIR is left, after up
 * to @graceMsec for them to go away.
 *
 * @param {number} graceMsec grace period
 */
export async function assertNoLeaks(graceMsec = 5000) {
    const deadline = GLib.get_monotonic_time() + graceMsec * 1000;
    let children, files;
    for (;;) {
        children = descendants();
        files = tmpEntries();
        if ((children.length === 0 && files.length === 0) ||
            GLib.get_monotonic_time() > deadline)
            break;
        await sleep(20);
    }
    if (children.length > 0)
        throw new AssertionError(`child processes left behind: ${children.join(' ')}`);
    if (files.length > 0)
        throw new AssertionError(`left behind in ${tmpdir}: ${files.join(' ')}`);
}

function guard(promise, seconds) {
    let id = 0;
    const timeout = new Promise((_, reject) => {
        id = GLib.timeout_add_seconds(GLib.PRIORITY_DEFAULT, seconds, () => {
            id = 0;
            reject(new AssertionError(`timed out after ${seconds} s (guard)`));
            return GLib.SOURCE_REMOVE;
        });
    });
    return Promise.race([promise, timeout]).finally(() => {
        if (id)
            GLib.source_remove(id);
    });
}

function killLeftovers() {
    for (const pid of descendants())
        GLib.spawn_command_line_sync(`kill -KILL ${pid}`);
}

/**
 * Runs the registered tests (those whose name contains the first program
 * argument, if any) and exits the process: 0 when all passed, else 1.
 */
export async function run() {
    const filter = System.programArgs[0] ?? '';
    const selected = tests.filter(t => t.name.includes(filter));
    const loop = new GLib.MainLoop(null, false);
    let failed = 0;

    const body = async () => {
        print(`1..${selected.length}`);
        for (const [i, {name, fn}] of selected.entries()) {
            const start = GLib.get_monotonic_time();
            try {
                await guard(Promise.resolve().then(fn), GUARD_SECONDS);
                await assertNoLeaks();
                const ms = Math.round((GLib.get_monotonic_time() - start) / 1000);
                print(`ok ${i + 1} - ${name} (${ms} ms)`);
            } catch (e) {
                failed++;
                print(`not ok ${i + 1} - ${name}`);
                const text = e instanceof GLib.Error
                    ? `GLib.Error ${GLib.quark_to_string(e.domain)} ${e.code}: ${e.message}`
                    : `${e}\n${e.stack ?? ''}`;
                for (const line of text.trim().split('\n'))
                    print(`# ${line}`);
                // Leave a clean slate for the next test.
                killLeftovers();
            }
        }
    };
    body().catch(e => {
        failed++;
        printerr(`harness: ${e}\n${e.stack ?? ''}`);
    }).finally(() => loop.quit());
    loop.run();

    killLeftovers();
    try {
        for (const name of tmpEntries())
            GLib.spawn_command_line_sync(`rm -rf ${GLib.shell_quote(`${tmpdir}/${name}`)}`);
        GLib.rmdir(tmpdir);
    } catch (e) {
        printerr(`harness: cannot remove ${tmpdir}: ${e}`);
    }
    print(`# ${selected.length - failed} passed, ${failed} failed`);
    System.exit(failed > 0 ? 1 : 0);
}
