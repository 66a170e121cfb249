// worker.js — GJS worker process of Fiber pools
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
//   gjs -m worker.js [MODULE_URL…]
//
// Pools created with fiber.js's newPool() start their workers with this
// command (their `worker-command`).  The worker imports the listed ES
// modules, registers the task `js.call` and then calls Fiber.init(): the C
// worker runtime connects to the pool and serves tasks on this, the main
// thread, until the pool shuts the worker down.
//
// js.call takes `(sss)`: the URL of an ES module, the name of one of its
// exported functions and the JSON text of the argument array; it returns
// `(s)`, the JSON text of the function's return value.  A function that
// throws fails the task: the caller gets a GLib.Error carrying the message.
// Modules not listed on the command line are imported on first use.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Fiber from 'gi://Fiber?version=1.0';
import System from 'system';

const modules = new Map();

async function load(url) {
    if (!modules.has(url))
        modules.set(url, await import(url));
    return modules.get(url);
}

// Runs the default main context until @promise settles: a task body is
// synchronous, but importing a module (and an async task function) is not.
function settle(promise) {
    let done = false, value, error;
    promise.then(v => {
        done = true;
        value = v;
    }, e => {
        done = true;
        error = e;
    });
    const context = GLib.MainContext.default();
    while (!done)
        context.iteration(true);
    if (error !== undefined)
        throw error;
    return value;
}

function describe(e) {
    if (e instanceof Error)
        return `${e.name}: ${e.message}\n${e.stack ?? ''}`.trim();
    return String(e);
}

function jsCall(args /* , cancellable */) {
    const [url, name, json] = args.deepUnpack();
    let result;
    try {
        const module = modules.get(url) ?? settle(load(url));
        const fn = module[name];
        if (typeof fn !== 'function')
            throw new TypeError(`${url} does not export a function “${name}”`);
        result = fn(...JSON.parse(json));
        if (result instanceof Promise)
            result = settle(result);
        result = JSON.stringify(result === undefined ? null : result);
    } catch (e) {
        throw new GLib.Error(Fiber.error_quark(), Fiber.Error.TASK_FAILED, describe(e));
    }
    return new GLib.Variant('(s)', [result]);
}

// No top-level await here: Fiber.init() must not run inside a promise job,
// where GJS cannot settle the promises of the tasks (see settle()).
// A module that fails to load here is not fatal: the tasks that use it
// fail with the import error (it is tried again on first use).
for (const url of System.programArgs) {
    try {
        settle(load(url));
    } catch (e) {
        printerr(`worker.js: cannot import ${url}: ${describe(e)}`);
    }
}

Fiber.task_register('js.call', jsCall);
// The argv that re-executes this worker: a Fiber.Process started by a task
// here runs another GJS worker with the same modules.
let gjs;
try {
    gjs = GLib.file_read_link('/proc/self/exe');
} catch {
    gjs = GLib.find_program_in_path('gjs') ?? 'gjs';
}
const self = Gio.File.new_for_uri(import.meta.url).get_path();
Fiber.init([gjs, '-m', self, ...System.programArgs]);
// Fiber.init() returns only when this process was not started by a pool.
printerr('worker.js: not started by a Fiber pool');
System.exit(2);
