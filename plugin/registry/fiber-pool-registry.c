/* fiber-pool-registry.c — pool types by name
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * First version: the built-in process types only.  The GIO extension point
 * "fiber-pool-type" replaces this table (issue: pool types and registry).
 */

#include "fiber-error.h"
#include "fiber-pool-private.h"
#include "fiber-pool-registry-private.h"
#include "fiber-process-pool.h"

FiberPool *
_fiber_pool_registry_create (const char  *pool_type,
                             guint        processes,
                             GError     **error)
{
  FiberPool *pool;
  gboolean daemon;

  if (pool_type == NULL)
    pool_type = g_getenv ("FIBER_POOL_TYPE");
  if (pool_type == NULL || *pool_type == '\0')
    pool_type = "process";

  if (g_str_equal (pool_type, "process"))
    daemon = TRUE;
  else if (g_str_equal (pool_type, "ndprocess"))
    daemon = FALSE;
  else
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "unknown pool type “%s” (known: process, ndprocess)", pool_type);
      return NULL;
    }

  pool = fiber_process_pool_new (processes, daemon, NULL, error);
  if (pool != NULL)
    _fiber_pool_set_pool_type (pool, pool_type);
  return pool;
}

/**
 * fiber_pool_list_types:
 *
 * Lists the names of the pool types that fiber_pool_new() accepts.
 *
 * Returns: (transfer full) (array zero-terminated=1): the type names
 */
char **
fiber_pool_list_types (void)
{
  const char *types[] = { "process", "ndprocess", NULL };
  return g_strdupv ((char **) types);
}
