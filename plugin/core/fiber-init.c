/* fiber-init.c — process roles: parent, pool worker, FiberProcess child
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <gmodule.h>
#include <stdlib.h>
#include <sched.h>
#include <unistd.h>

#include "fiber-error.h"
#include "fiber-init.h"
#include "fiber-init-private.h"

static gboolean   init_called;
static char     **saved_argv;
static gboolean   is_worker;

/**
 * fiber_init:
 * @argc: (inout) (optional) (transfer none): the address of `main()`'s argc
 * @argv: (array length=argc) (inout) (optional) (transfer none): the address of `main()`'s argv
 * @error: return location for an error
 *
 * Call this first thing in `main()` of a program that uses pools or
 * processes with its own registered tasks (register them before the call).
 *
 * In the parent it records the command line, so that pools can start
 * workers by re-executing this very program, and returns %TRUE.
 *
 * In a process started as a pool worker it connects to the master, serves
 * tasks until told to stop and then exits the process: the call never
 * returns.  In a process started for a [class@Fiber.Process] it runs the
 * process target and exits with 0 (success) or 1 (the target failed).
 *
 * Returns: %TRUE in the parent; %FALSE with @error set if the environment
 *   describes a worker role that cannot be served
 */
gboolean
fiber_init (int      *argc,
            char   ***argv,
            GError  **error)
{
  if (!init_called)
    {
      init_called = TRUE;
      /* Bindings pass exactly *argc strings without a NULL terminator
       * (the annotation is array length=argc): copy by the count. */
      if (argc != NULL && argv != NULL && *argv != NULL)
        {
          g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();

          for (int i = 0; i < *argc && (*argv)[i] != NULL; i++)
            g_strv_builder_add (builder, (*argv)[i]);
          saved_argv = g_strv_builder_end (builder);
        }
    }

  _fiber_process_init_current ();

  if (g_getenv (FIBER_ENV_WORKER_ENDPOINT) != NULL)
    {
      is_worker = TRUE;
      exit (_fiber_worker_main_from_environment ());
    }

  if (g_getenv (FIBER_ENV_PROCESS_PAYLOAD) != NULL ||
      g_getenv (FIBER_ENV_PROCESS_PAYLOAD_FILE) != NULL)
    {
      is_worker = TRUE;
      exit (_fiber_process_child_main ());
    }

  return TRUE;
}

/**
 * fiber_is_worker:
 *
 * Tells whether this process is a worker the library started.
 *
 * Returns: %TRUE in a process that serves tasks for a pool or runs a
 *   [class@Fiber.Process] target
 */
gboolean
fiber_is_worker (void)
{
  return is_worker;
}

/**
 * fiber_cpu_count:
 *
 * The number of CPUs this process may run on (its affinity mask), the
 * default size of a pool.
 *
 * Returns: the number of usable CPUs, at least 1
 */
guint
fiber_cpu_count (void)
{
  cpu_set_t set;

  if (sched_getaffinity (0, sizeof set, &set) == 0)
    {
      int n = CPU_COUNT (&set);
      if (n > 0)
        return (guint) n;
    }
  return MAX (1, g_get_num_processors ());
}

gboolean
_fiber_init_was_called (void)
{
  return init_called && saved_argv != NULL && saved_argv[0] != NULL;
}

const char * const *
_fiber_init_get_argv (void)
{
  return (const char * const *) saved_argv;
}

const char *
_fiber_get_worker_executable (void)
{
  const char *path = g_getenv (FIBER_ENV_WORKER_EXE);

  if (path != NULL && *path != '\0')
    return path;
  return FIBER_LIBEXECDIR "/fiber-worker";
}

typedef void (*RegisterTasksFunc) (void);

gboolean
_fiber_load_task_modules (const char * const  *paths,
                          GError             **error)
{
  for (guint i = 0; paths != NULL && paths[i] != NULL; i++)
    {
      GModule *module;
      RegisterTasksFunc reg = NULL;

      if (*paths[i] == '\0')
        continue;
      module = g_module_open (paths[i], G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL);
      if (module == NULL)
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                       "cannot load task module %s: %s", paths[i], g_module_error ());
          return FALSE;
        }
      if (!g_module_symbol (module, "fiber_module_register_tasks", (gpointer *) &reg) ||
          reg == NULL)
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                       "task module %s does not export fiber_module_register_tasks()",
                       paths[i]);
          g_module_close (module);
          return FALSE;
        }
      /* Task modules stay loaded: their functions are in the registry. */
      g_module_make_resident (module);
      reg ();
    }
  return TRUE;
}
