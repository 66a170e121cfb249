/* fiber-test-module.c — a GIO module adding the pool type "test-inline"
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Loaded from FIBER_MODULE_DIR by test-registry (and the peas tests).  The
 * pool runs every item of a batch at once in the calling thread, which is
 * all a pool type needs to do: FiberPool builds the batches and results.
 */

#include <fiber.h>

#include "pool-test-util.h"

#define FIBER_TEST_TYPE_INLINE_POOL (fiber_test_inline_pool_get_type ())

G_DECLARE_FINAL_TYPE (FiberTestInlinePool, fiber_test_inline_pool,
                      FIBER_TEST, INLINE_POOL, FiberPool)

struct _FiberTestInlinePool
{
  FiberPool parent_instance;
};

G_DEFINE_DYNAMIC_TYPE_EXTENDED (FiberTestInlinePool, fiber_test_inline_pool,
                                FIBER_TYPE_POOL, G_TYPE_FLAG_FINAL, {})

static gboolean
fiber_test_inline_pool_supports_func (FiberPool *pool)
{
  return TRUE;
}

static void
fiber_test_inline_pool_class_init (FiberTestInlinePoolClass *klass)
{
  FiberPoolClass *pool_class = FIBER_POOL_CLASS (klass);

  pool_test_inline_class_setup (pool_class);
  pool_class->supports_func = fiber_test_inline_pool_supports_func;
}

static void
fiber_test_inline_pool_class_finalize (FiberTestInlinePoolClass *klass)
{
}

static void
fiber_test_inline_pool_init (FiberTestInlinePool *self)
{
}

G_MODULE_EXPORT void g_io_module_load (GIOModule *module);
G_MODULE_EXPORT void g_io_module_unload (GIOModule *module);
G_MODULE_EXPORT char **g_io_module_query (void);

G_MODULE_EXPORT void
g_io_module_load (GIOModule *module)
{
  fiber_test_inline_pool_register_type (G_TYPE_MODULE (module));
  g_io_extension_point_implement (FIBER_POOL_EXTENSION_POINT_NAME,
                                  FIBER_TEST_TYPE_INLINE_POOL,
                                  "test-inline", 10);
}

G_MODULE_EXPORT void
g_io_module_unload (GIOModule *module)
{
}

G_MODULE_EXPORT char **
g_io_module_query (void)
{
  const char *extension_points[] = { FIBER_POOL_EXTENSION_POINT_NAME, NULL };

  return g_strdupv ((char **) extension_points);
}
