/* fiber-pool-registry-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

#include "fiber-pool.h"
#include "fiber-pool-registry.h"

G_BEGIN_DECLS

/* The GSettings schema of the library. */
#define FIBER_SETTINGS_SCHEMA_ID "org.fiberglib.Fiber"

/* Registers the extension point and the built-in pool types and loads the
 * modules directories, once per process.  Every entry point below calls it. */
void        _fiber_pool_registry_ensure        (void);

/* Creates a pool of the type called @pool_type (NULL: the default type). */
FiberPool  *_fiber_pool_registry_create        (const char    *pool_type,
                                                guint          processes,
                                                GError       **error);

/* Resolves @pool_type (NULL: the default type, see the registry file) to
 * the registered name (transfer full) and the class its pools have. */
gboolean    _fiber_pool_registry_lookup        (const char    *pool_type,
                                                char         **out_name,
                                                GType         *out_type,
                                                GError       **error);

/* Creates a pool of @pool_type (NULL: default) with these construct
 * properties; properties the caller leaves out get the pool type's preset
 * (daemon for process/ndprocess, the backend for remote) and then the
 * GSettings defaults.  A `processes` value of 0 means "the default". */
FiberPool  *_fiber_pool_registry_create_with_properties (const char    *pool_type,
                                                         guint          n_properties,
                                                         const char    *names[],
                                                         const GValue   values[],
                                                         GError       **error);

/* The backend class called @name ("local", "slurm", …: the type
 * `Fiber<Name>Backend` implementing FiberBackend). */
GType       _fiber_pool_registry_lookup_backend (const char   *name,
                                                 GError      **error);

/* Creates the backend called @name with these construct properties; the
 * properties left out come from the settings "<name>-<property>". */
GObject    *_fiber_pool_registry_create_backend (const char    *name,
                                                 guint          n_properties,
                                                 const char    *names[],
                                                 const GValue   values[],
                                                 GError       **error);

/* The library's settings, or NULL when the schema is not installed (the
 * documented defaults then apply). */
GSettings  *_fiber_settings_new                (void);

G_END_DECLS
