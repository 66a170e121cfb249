// fiber.js — helpers for using Fiber pools from GJS
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
//   import * as FiberJS from '<datadir>/fiber-1.0/js/fiber.js';
//   const pool = FiberJS.newPool('process', 2, {modules: [import.meta.url]});
//   const sum = await FiberJS.call(pool, import.meta.url, 'add', 1, 2);
//   const echoed = await pool.apply_async('fiber.echo', new GLib.Variant('(i)', [1]), null);
//
// Importing this module promisifies the asynchronous methods of Fiber.Pool
// (apply_async, map_async, starmap_async), so they return a Promise when no
// callback is given; errors arrive as GLib.Error.
//
// JS tasks (exported functions of ES modules) run in GJS worker processes
// (worker.js), so they need a pool whose workers are processes (`process`,
// `ndprocess`, `remote`).  The in-process pools (`thread`, `coroutine`) run
// registered C tasks: SpiderMonkey cannot run JS on their threads.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Fiber from 'gi://Fiber?version=1.0';

Gio._promisify(Fiber.Pool.prototype, 'apply_async', 'apply_finish');
Gio._promisify(Fiber.Pool.prototype, 'map_async', 'map_finish');
Gio._promisify(Fiber.Pool.prototype, 'starmap_async', 'map_finish');

/** The URL of the GJS worker entry next to this module. */
export const workerUrl = new URL('worker.js', import.meta.url).href;

/**
 * The command line of a GJS worker that preloads @modules (URLs).
 *
 * @param {string[]} modules ES module URLs the worker imports at start
 * @returns {string[]} argv
 */
export function workerCommand(modules = []) {
    const gjs = GLib.find_program_in_path('gjs') ?? 'gjs';
    const path = Gio.File.new_for_uri(workerUrl).get_path();
    return [gjs, '-m', path, ...modules];
}

/**
 * Creates a pool of @type whose process workers run GJS (so JS tasks work).
 *
 * @param {string|null} type pool type name (null: the default type)
 * @param {number} processes workers (0: one per CPU)
 * @param {object} options `modules`: ES module URLs workers preload;
 *   any other key is set as a property of the pool
 * @returns {Fiber.Pool} the pool
 */
export function newPool(type = null, processes = 0, options = {}) {
    const {modules = [], ...props} = options;
    const command = workerCommand(modules);
    const newWithProps = Fiber.Pool.new_with_properties;
    let pool;
    if (newWithProps) {
        const all = {'worker-command': command, ...props};
        const names = [], values = [];
        for (const [key, value] of Object.entries(all)) {
            names.push(key);
            values.push(value);
        }
        pool = newWithProps(type, processes, names, values);
    } else {
        pool = Fiber.Pool.new(type, processes);
        for (const [key, value] of Object.entries(props))
            pool.set_property(key, value);
        try {
            pool.set_property('worker-command', command);
        } catch {
            // in-process pool types have no worker command
        }
    }
    return pool;
}

function jsArgs(moduleUrl, name, args) {
    return new GLib.Variant('(sss)', [moduleUrl, name, JSON.stringify(args)]);
}

function jsResult(variant) {
    const [json] = variant.deepUnpack();
    return JSON.parse(json);
}

/**
 * Runs the exported function @name of the ES module @moduleUrl in a worker.
 *
 * @param {Fiber.Pool} pool a pool made with newPool()
 * @param {string} moduleUrl URL of the module (import.meta.url of the caller, …)
 * @param {string} name exported function
 * @param {...any} args JSON-serialisable arguments
 * @returns {Promise<any>} the function's (JSON-serialisable) result
 */
export async function call(pool, moduleUrl, name, ...args) {
    return jsResult(await pool.apply_async('js.call', jsArgs(moduleUrl, name, args), null));
}

/**
 * Maps the exported function @name over @items in the pool's workers.
 *
 * @param {Fiber.Pool} pool a pool made with newPool()
 * @param {string} moduleUrl URL of the module
 * @param {string} name exported function, called with one item
 * @param {any[]} items JSON-serialisable items
 * @param {number} chunksize items per message (0: automatic)
 * @returns {Promise<any[]>} the results in input order
 */
export async function map(pool, moduleUrl, name, items, chunksize = 0) {
    const iterable = new GLib.Variant('a(sss)', items.map(item => [moduleUrl, name, JSON.stringify([item])]));
    const results = await pool.map_async('js.call', iterable, chunksize, null);
    return results.deepUnpack().map(v => jsResult(v));
}
