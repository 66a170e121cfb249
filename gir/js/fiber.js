// fiber.js — using Fiber pools and processes from GJS
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
//   import Fiber from 'gi://Fiber?version=1.0';
//   import * as FiberJS from '<datadir>/fiber-1.0/js/fiber.js';
//
//   const pool = FiberJS.newPool('process', 2, {modules: [import.meta.url]});
//   const echoed = await pool.apply_async('fiber.echo', new GLib.Variant('(i)', [1]), null);
//   const sum = await FiberJS.call(pool, import.meta.url, 'add', 1, 2);
//   const squares = await FiberJS.map(pool, import.meta.url, 'square', [1, 2, 3]);
//   pool.close();
//   pool.join(-1);
//
// Importing this module promisifies the asynchronous methods of Fiber.Pool
// (apply_async, map_async, starmap_async): without a callback they return a
// Promise.  Failures reject with a GLib.Error (domain Fiber.error_quark());
// a task that failed in a worker carries the worker-side message.
//
// Registered C tasks (fiber.echo, fiber.sleep, your own task modules) run on
// every pool type.  JS tasks — exported functions of ES modules, called with
// JSON-serialisable arguments — run:
//
//  * on `process` and `ndprocess` pools made by newPool(): in GJS worker
//    processes (worker.js next to this file), each with its own JS engine,
//    in parallel;
//  * on the in-process pools (`thread`, `coroutine`): on this thread, from
//    the default main context, one step at a time.  GJS runs JavaScript only
//    on its main thread — it refuses (with a critical warning, and the task
//    fails) to run a JS function on a pool thread or a coroutine scheduler —
//    so call()/map()/starmap() do not hand JS functions to those pools at
//    all.  Pool.apply_func() with a JS function throws
//    Fiber.Error.NOT_SUPPORTED for the same reason.
//
// pool.interrupt() fails a running JS task with Fiber.Error.INTERRUPTED, but
// only once the function has returned: JavaScript is not cut short mid-run
// (C tasks are).
//
// A JS function registered with Fiber.task_register() in the main process
// is therefore not usable from a thread or coroutine pool (the task fails
// with "the task returned no result and no error"); export it from a module
// and use call()/map() instead.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Fiber from 'gi://Fiber?version=1.0';
import System from 'system';

Gio._promisify(Fiber.Pool.prototype, 'apply_async', 'apply_finish');
Gio._promisify(Fiber.Pool.prototype, 'map_async', 'map_finish');
Gio._promisify(Fiber.Pool.prototype, 'starmap_async', 'map_finish');

// The wire decoder keeps a remote FIBER_ERROR code only if the quark
// already exists in this process.
const FIBER_ERROR = Fiber.error_quark();

/** The task the GJS workers run a JS function with. */
export const JS_TASK = 'js.call';

/** The URL of the GJS worker entry next to this module. */
export const workerUrl = Gio.File.new_for_uri(import.meta.url)
    .get_parent().get_child('worker.js').get_uri();

/** The pool types whose workers are processes of this machine. */
const PROCESS_TYPES = {process: true, ndprocess: false};

/** The in-process pool types: JS tasks run on this thread (see above). */
const IN_PROCESS_CLASSES = {thread: 'ThreadPool', coroutine: 'CoroutinePool'};

function fiberError(code, message) {
    return new GLib.Error(FIBER_ERROR, code, message);
}

/** The GJS interpreter running this program (workers use the same). */
function gjsExecutable() {
    try {
        return GLib.file_read_link('/proc/self/exe');
    } catch {
        return GLib.find_program_in_path('gjs') ?? 'gjs';
    }
}

/**
 * The command line of a GJS worker that preloads @modules.
 *
 * @param {string[]} modules ES module URLs the worker imports at start
 * @returns {string[]} argv
 */
export function workerCommand(modules = []) {
    const gjs = gjsExecutable();
    const path = Gio.File.new_for_uri(workerUrl).get_path();
    return [gjs, '-m', path, ...modules.map(m => String(m))];
}

/**
 * Whether the module of @meta is the program's main module (`gjs -m it`).
 * A module that exports JS tasks and also starts pools must guard its main
 * code with this: GJS workers import the module too.
 *
 *   if (FiberJS.isMainModule(import.meta))
 *       main();
 *
 * @param {object} meta the `import.meta` of the module
 * @returns {boolean}
 */
export function isMainModule(meta) {
    const path = System.programPath;
    return path !== null && path !== undefined &&
        Gio.File.new_for_uri(meta.url).equal(Gio.File.new_for_path(path));
}

let initialized = false;

/**
 * Makes this GJS program start GJS workers: calls Fiber.init() with the
 * worker command, so that a Fiber.Process (and a process pool made with
 * Fiber.Pool.new()) re-executes `gjs -m worker.js @modules…`, which can
 * run JS tasks as well as C ones.  Only the first call has an effect.
 *
 * @param {string[]} modules ES module URLs the workers import at start
 */
export function init(modules = []) {
    if (initialized)
        return;
    initialized = true;
    Fiber.init(workerCommand(modules));
}

/**
 * The pool type Fiber.Pool.new(null, …) picks: the environment variable
 * FIBER_POOL_TYPE, then the setting `default-pool-type`, then `process`.
 *
 * @returns {string} a pool type name
 */
export function defaultPoolType() {
    const env = GLib.getenv('FIBER_POOL_TYPE');
    if (env)
        return env;
    const source = Gio.SettingsSchemaSource.get_default();
    if (source?.lookup('org.fiberglib.Fiber', true)) {
        const value = new Gio.Settings({schema_id: 'org.fiberglib.Fiber'})
            .get_string('default-pool-type');
        if (value)
            return value;
    }
    return 'process';
}

/**
 * Creates a pool of @type.  Process pools get GJS workers (worker.js), so
 * they run JS tasks as well as registered C tasks.
 *
 * @param {string|null} type `process`, `ndprocess`, `thread`, `coroutine`,
 *   or any registered type name (null: the default type)
 * @param {number} processes workers (0: one per CPU)
 * @param {object} options `modules`: ES module URLs the workers import at
 *   start (others are imported on first use); `jsInitializer`:
 *   `[moduleUrl, name, args]`, a JS function each worker process runs once
 *   before its first task (process pools only); every other key is a
 *   construct property of the pool class (`maxtasksperchild`,
 *   `max_retries`, `initializer` + `initargs` for a C task, `stack_size`, …)
 * @returns {Fiber.Pool} the pool, ready for work
 * @throws {GLib.Error} when the type is unknown or the workers cannot start
 */
export function newPool(type = null, processes = 0, options = {}) {
    const {modules = [], jsInitializer = null, ...props} = options;
    type ??= defaultPoolType();
    if (jsInitializer !== null) {
        if (!(type in PROCESS_TYPES)) {
            throw fiberError(Fiber.Error.NOT_SUPPORTED,
                'a JS initializer needs a process pool: in-process pools have no JS workers');
        }
        const [url, name, args = []] = jsInitializer;
        props.initializer = JS_TASK;
        props.initargs = new GLib.Variant('(sss)', packCall(url, name, args));
    }
    if (type in PROCESS_TYPES) {
        const pool = new Fiber.ProcessPool({
            pool_type: type,
            processes,
            daemon: PROCESS_TYPES[type],
            worker_command: workerCommand(modules),
            ...props,
        });
        pool.init(null);
        return pool;
    }
    if (type in IN_PROCESS_CLASSES) {
        const pool = new Fiber[IN_PROCESS_CLASSES[type]]({
            pool_type: type,
            processes,
            ...props,
        });
        pool.init(null);
        return pool;
    }
    if (Object.keys(props).length > 0 || modules.length > 0) {
        throw fiberError(Fiber.Error.INVALID_ARGUMENT,
            `newPool(): options are supported for ${[...Object.keys(PROCESS_TYPES),
                ...Object.keys(IN_PROCESS_CLASSES)].join(', ')} pools, not “${type}”`);
    }
    return Fiber.Pool.new(type, processes);
}

/**
 * Whether JS tasks given to @pool run in GJS worker processes (else they
 * run on this thread: see the top of this file).
 *
 * @param {Fiber.Pool} pool a pool
 * @returns {boolean}
 */
export function runsJsInWorkers(pool) {
    return pool instanceof Fiber.ProcessPool;
}

// Pool.apply_func() would run the JS function on a pool thread, where GJS
// refuses to run it: say so instead.
Fiber.Pool.prototype.apply_func = function () {
    throw fiberError(Fiber.Error.NOT_SUPPORTED,
        'a JavaScript function cannot run on the threads of a Fiber pool; ' +
        'export it from an ES module and use call()/map() of fiber.js');
};

function packCall(moduleUrl, name, args) {
    return [String(moduleUrl), String(name), JSON.stringify(args)];
}

function unpackResult(variant) {
    const [json] = variant.deepUnpack();
    return JSON.parse(json);
}

function describe(e) {
    if (e instanceof Error)
        return `${e.name}: ${e.message}\n${e.stack ?? ''}`.trim();
    return String(e);
}

const modules = new Map();

/**
 * Imports @url (once) and returns its exported function @name.
 *
 * @param {string} url ES module URL
 * @param {string} name exported function
 * @returns {Promise<Function>} the function
 */
export async function lookup(url, name) {
    if (!modules.has(url))
        modules.set(url, await import(url));
    const fn = modules.get(url)[name];
    if (typeof fn !== 'function')
        throw new TypeError(`${url} does not export a function “${name}”`);
    return fn;
}

// Runs one JS task on this thread, as a GJS worker would: JSON in, JSON out,
// a throw becomes Fiber.Error.TASK_FAILED.  Each call starts from the main
// context, never from inside a pool.
async function runHere(pool, moduleUrl, name, args) {
    if (pool.is_closed())
        throw fiberError(Fiber.Error.CLOSED, 'the pool is closed: no new work is accepted');
    await new Promise(resolve => GLib.idle_add(GLib.PRIORITY_DEFAULT, () => {
        resolve();
        return GLib.SOURCE_REMOVE;
    }));
    const [url, fname, json] = packCall(moduleUrl, name, args);
    try {
        const fn = await lookup(url, fname);
        const result = await fn(...JSON.parse(json));
        return JSON.parse(JSON.stringify(result === undefined ? null : result));
    } catch (e) {
        throw fiberError(Fiber.Error.TASK_FAILED, describe(e));
    }
}

/**
 * Runs the exported function @name of the ES module @moduleUrl with @args
 * (apply).  Async functions are awaited.
 *
 * @param {Fiber.Pool} pool a pool (process pools: made with newPool())
 * @param {string} moduleUrl URL of the module (import.meta.url, …)
 * @param {string} name exported function
 * @param {...any} args JSON-serialisable arguments
 * @returns {Promise<any>} the function's (JSON-serialisable) result
 */
export async function call(pool, moduleUrl, name, ...args) {
    if (!runsJsInWorkers(pool))
        return runHere(pool, moduleUrl, name, args);
    const packed = new GLib.Variant('(sss)', packCall(moduleUrl, name, args));
    return unpackResult(await pool.apply_async(JS_TASK, packed, null));
}

async function mapCalls(pool, moduleUrl, name, argLists, chunksize) {
    if (!runsJsInWorkers(pool)) {
        const results = [];
        for (const args of argLists)
            results.push(await runHere(pool, moduleUrl, name, args));
        return results;
    }
    const iterable = new GLib.Variant('a(sss)',
        argLists.map(args => packCall(moduleUrl, name, args)));
    const results = await pool.map_async(JS_TASK, iterable, chunksize, null);
    return results.deepUnpack().map(v => unpackResult(v));
}

/**
 * Maps the exported function @name over @items; results in input order.
 * The first failure rejects the promise.
 *
 * @param {Fiber.Pool} pool a pool (process pools: made with newPool())
 * @param {string} moduleUrl URL of the module
 * @param {string} name exported function, called with one item
 * @param {any[]} items JSON-serialisable items
 * @param {number} chunksize items per message (0: automatic)
 * @returns {Promise<any[]>} the results
 */
export function map(pool, moduleUrl, name, items, chunksize = 0) {
    return mapCalls(pool, moduleUrl, name, items.map(item => [item]), chunksize);
}

/**
 * Like map(), but each item is the array of arguments of one call.
 *
 * @param {Fiber.Pool} pool a pool (process pools: made with newPool())
 * @param {string} moduleUrl URL of the module
 * @param {string} name exported function
 * @param {any[][]} argLists one argument array per call
 * @param {number} chunksize items per message (0: automatic)
 * @returns {Promise<any[]>} the results
 */
export function starmap(pool, moduleUrl, name, argLists, chunksize = 0) {
    return mapCalls(pool, moduleUrl, name, argLists.map(a => [...a]), chunksize);
}

/**
 * Iterates a Fiber.MapResult (from Pool.imap / Pool.imap_unordered):
 * yields `[index, value]` as items complete; throws the first failure.
 * Each step blocks this thread for at most @timeoutMsec (-1: no limit), so
 * use it where blocking is fine (scripts, tests), or with a timeout.
 *
 * @param {Fiber.MapResult} result the result of imap()/imap_unordered()
 * @param {number} timeoutMsec per item; on expiry Fiber.Error.TIMEOUT
 * @yields {Array} `[index, GLib.Variant]`
 */
export function* results(result, timeoutMsec = -1) {
    for (;;) {
        const [more, index, value] = result.next(timeoutMsec);
        if (!more)
            return;
        yield [index, value];
    }
}

/**
 * Iterates a Fiber.MapResult without blocking the main loop:
 * `for await (const [index, value] of FiberJS.iterate(result))`.  Yields
 * `[index, value]` as items complete and throws the first failure.  A
 * MapResult announces only its completion, so between items this polls
 * (every 1 ms, backing off to @maxPollMsec while nothing arrives).
 *
 * @param {Fiber.MapResult} result the result of imap()/imap_unordered()
 * @param {number} maxPollMsec longest pause between two polls
 * @yields {Array} `[index, GLib.Variant]`
 */
export async function* iterate(result, maxPollMsec = 20) {
    let pause = 1;
    for (;;) {
        let more, index, value;
        try {
            [more, index, value] = result.next(0);
        } catch (e) {
            if (!e.matches?.(FIBER_ERROR, Fiber.Error.TIMEOUT))
                throw e;
            await new Promise(resolve => GLib.timeout_add(GLib.PRIORITY_DEFAULT, pause, () => {
                resolve();
                return GLib.SOURCE_REMOVE;
            }));
            pause = Math.min(pause * 2, maxPollMsec);
            continue;
        }
        if (!more)
            return;
        pause = 1;
        yield [index, value];
    }
}

/**
 * A Fiber.Process whose target is the exported function @name of the ES
 * module @moduleUrl, called with @args in a new GJS process.  Call init()
 * first (the child re-executes this program as a GJS worker); the process
 * exits with 0 when the function returns and 1 when it throws.
 *
 * @param {string} moduleUrl URL of the module
 * @param {string} name exported function
 * @param {any[]} args JSON-serialisable arguments
 * @param {object} props properties of the process (`name`, `daemon`, …)
 * @returns {Fiber.Process} the process, not started yet
 */
export function newProcess(moduleUrl, name, args = [], props = {}) {
    if (!initialized)
        throw fiberError(Fiber.Error.STATE, 'call init() of fiber.js before newProcess()');
    return new Fiber.Process({
        task: JS_TASK,
        args: new GLib.Variant('(sss)', packCall(moduleUrl, name, args)),
        ...props,
    });
}
