/* fiber-worker-main.c — the generic worker executable
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Pools and processes start `fiber-worker` when the host program does not
 * re-execute itself.  The tasks it can run are the built-in ones plus those
 * of the task modules named with `--module PATH` (repeatable) or in
 * FIBER_TASK_MODULES (':'-separated): shared objects exporting
 *
 *   void fiber_module_register_tasks (void);
 *
 * The role (pool worker, process child) comes from the environment the
 * parent set; fiber_init() serves it and exits.
 */

#include <dlfcn.h>
#include <stdlib.h>

#include <fiber.h>

#define TASK_MODULES_ENV "FIBER_TASK_MODULES"
#define WORKER_ENDPOINT_ENV "FIBER_WORKER_ENDPOINT"

typedef void (*RegisterTasksFunc) (void);

/* dlopen() rather than GModule: this program links only what the library's
 * pkg-config file gives (glibc has dlopen() in libc). */
static gboolean
load_module (const char  *path,
             GError     **error)
{
  void *handle;
  RegisterTasksFunc reg;

  handle = dlopen (path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (handle == NULL)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "cannot load task module %s: %s", path, dlerror ());
      return FALSE;
    }
  reg = (RegisterTasksFunc) dlsym (handle, "fiber_module_register_tasks");
  if (reg == NULL)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "task module %s does not export fiber_module_register_tasks()", path);
      dlclose (handle);
      return FALSE;
    }
  /* The module stays loaded: its functions are in the registry. */
  reg ();
  return TRUE;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) modules = NULL;
  gboolean list_tasks = FALSE;
  const GOptionEntry entries[] = {
    { "module", 'm', 0, G_OPTION_ARG_FILENAME_ARRAY, &modules,
      "Load the tasks of this task module (repeatable)", "PATH" },
    { "list-tasks", 0, 0, G_OPTION_ARG_NONE, &list_tasks,
      "List the tasks this worker can run, then exit", NULL },
    { NULL }
  };

  context = g_option_context_new ("— serve tasks for a fiber-glib pool");
  g_option_context_set_summary (context,
    "Started by fiber-glib pools and processes, which describe the role in the\n"
    "environment.  Task modules come from --module and FIBER_TASK_MODULES.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("fiber-worker: %s\n", error->message);
      return 2;
    }

  /* Modules given on the command line travel in the environment, so that
   * the worker runtime loads them and children of this worker get them. */
  if (modules != NULL && modules[0] != NULL)
    {
      const char *inherited = g_getenv (TASK_MODULES_ENV);
      g_autofree char *joined = g_strjoinv (":", modules);
      g_autofree char *value = inherited != NULL && *inherited != '\0'
                               ? g_strconcat (inherited, ":", joined, NULL)
                               : g_strdup (joined);

      g_setenv (TASK_MODULES_ENV, value, TRUE);
    }

  /* A pool worker loads its modules in the runtime (after it consumed its
   * environment); every other role needs them before fiber_init(). */
  if (g_getenv (WORKER_ENDPOINT_ENV) == NULL || list_tasks)
    {
      const char *paths = g_getenv (TASK_MODULES_ENV);
      g_auto(GStrv) split = g_strsplit (paths != NULL ? paths : "", ":", -1);

      for (guint i = 0; split[i] != NULL; i++)
        if (*split[i] != '\0' && !load_module (split[i], &error))
          {
            g_printerr ("fiber-worker: %s\n", error->message);
            return 1;
          }
    }

  if (list_tasks)
    {
      g_auto(GStrv) names = fiber_task_list ();

      for (guint i = 0; names[i] != NULL; i++)
        g_print ("%s\n", names[i]);
      return 0;
    }

  if (!fiber_init (&argc, &argv, &error))
    {
      g_printerr ("fiber-worker: %s\n", error->message);
      return 1;
    }

  /* fiber_init() returns only when no role was given. */
  g_printerr ("fiber-worker: nothing to do: this program is started by fiber-glib "
              "pools and processes (see --help)\n");
  return 2;
}
