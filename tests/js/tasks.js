// tasks.js — JS tasks for the GJS tests: exported functions of an ES module
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Fiber from 'gi://Fiber?version=1.0';

import * as FiberJS from '../../gir/js/fiber.js';

const importedAsMain = FiberJS.isMainModule(import.meta);

/** @returns {boolean} whether this module was the main module where it runs */
export function wasMain() {
    return importedAsMain;
}

let initialized = null;

/** @returns {bigint} a value JSON cannot carry */
export function notJson() {
    return 1n;
}

/** A pool initializer: remembers @value in this process. */
export function setup(value) {
    initialized = value;
}

/** @returns {any} what setup() remembered in this process (null: nothing) */
export function setupValue() {
    return initialized;
}

/** @returns {number} a + b */
export function add(a, b) {
    return a + b;
}

/** @returns {number} x squared */
export function square(x) {
    return x * x;
}

/** An async task: resolves to x + 1 after a main-loop turn. */
export function later(x) {
    return new Promise(resolve => GLib.idle_add(GLib.PRIORITY_DEFAULT, () => {
        resolve(x + 1);
        return GLib.SOURCE_REMOVE;
    }));
}

/** Throws an Error with @message. */
export function fail(message) {
    throw new Error(message);
}

/** @returns {number} the pid of the process running the task */
export function pid() {
    return new Gio.Credentials().get_unix_pid();
}

/** Sleeps @seconds (blocking), then returns @value. */
export function pause(seconds, value = null) {
    GLib.usleep(Math.round(seconds * 1e6));
    return value;
}

/** Sleeps @seconds (blocking), then returns the pid of its process. */
export function pauseThenPid(seconds) {
    GLib.usleep(Math.round(seconds * 1e6));
    return pid();
}

/**
 * Creates a file named after this process in @dir, then waits until @n
 * files exist there (all @n tasks run at the same time) and returns the
 * pid; throws after @timeoutSeconds.
 */
export function barrier(dir, n, timeoutSeconds = 30) {
    const me = pid();
    GLib.file_set_contents(GLib.build_filenamev([dir, `${me}`]), '');
    const deadline = GLib.get_monotonic_time() + timeoutSeconds * 1e6;
    for (;;) {
        const enumerator = Gio.File.new_for_path(dir).enumerate_children('standard::name',
            Gio.FileQueryInfoFlags.NOFOLLOW_SYMLINKS, null);
        let count = 0;
        while (enumerator.next_file(null) !== null)
            count++;
        enumerator.close(null);
        if (count >= n)
            return me;
        if (GLib.get_monotonic_time() > deadline)
            throw new Error(`barrier: ${count} of ${n} tasks started`);
        GLib.usleep(10000);
    }
}

/** Throws unless this process is the Fiber.Process called @name. */
export function expectName(name) {
    const current = Fiber.current_process();
    if (current.name !== name)
        throw new Error(`this process is called ${current.name}, not ${name}`);
    return null;
}

/** Maps square() over @items in a process pool of its own (a nested pool). */
export async function nestedSquares(items) {
    const pool = FiberJS.newPool('process', 1, {modules: [import.meta.url]});
    try {
        return await FiberJS.map(pool, import.meta.url, 'square', items);
    } finally {
        pool.close();
        pool.join(-1);
    }
}

/**
 * Returns x * 10; but with @die, the first call for @x (marked by a file in
 * @dir) SIGKILLs its own worker process, so only the retry returns.
 */
export function dieOnce(dir, x, die) {
    if (!die)
        return x * 10;
    const marker = Gio.File.new_for_path(GLib.build_filenamev([dir, `${x}`]));
    try {
        marker.create(Gio.FileCreateFlags.NONE, null).close(null);
    } catch {
        return x * 10;   // ran before: this is the retry
    }
    GLib.spawn_command_line_sync(`kill -KILL ${pid()}`);
    GLib.usleep(10 * 1e6);
    throw new Error('still alive after SIGKILL');
}

/** Returns null: the target of a process that exits with 0. */
export function nothing() {
    return null;
}

/** @returns {object} a structured value, to check the JSON round trip */
export function describe(name, list) {
    return {name, n: list.length, sum: list.reduce((a, b) => a + b, 0), nested: {list}};
}
