/* fiber-job-spec.c — what a backend needs to start one job
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>

#include "fiber-job-spec.h"
#include "fiber-job-private.h"

struct _FiberJobSpec
{
  gatomicrefcount   ref;
  char            **argv;
  /* key → value; a %NULL value removes the variable from the job's
   * environment (it would otherwise be inherited). */
  GHashTable       *env;
  char             *name;
  char             *cwd;
  guint             cpus;
  gboolean          daemon;
};

G_DEFINE_BOXED_TYPE (FiberJobSpec, fiber_job_spec,
                     fiber_job_spec_ref, fiber_job_spec_unref)

/**
 * fiber_job_spec_new:
 * @argv: (array zero-terminated=1): the command line of the job; `argv[0]`
 *   is the program (a path, or a name looked up in `PATH` when it contains
 *   no `/`)
 *
 * Creates a job specification running @argv with the environment of the
 * calling process, in its working directory.
 *
 * Returns: (transfer full): a new #FiberJobSpec
 */
FiberJobSpec *
fiber_job_spec_new (const char * const *argv)
{
  FiberJobSpec *spec;

  g_return_val_if_fail (argv != NULL && argv[0] != NULL, NULL);

  spec = g_new0 (FiberJobSpec, 1);
  g_atomic_ref_count_init (&spec->ref);
  spec->argv = g_strdupv ((char **) argv);
  spec->env = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  spec->cpus = 1;
  return spec;
}

/**
 * fiber_job_spec_ref:
 * @spec: a #FiberJobSpec
 *
 * Acquires a reference.
 *
 * Returns: (transfer full): @spec with one more reference
 */
FiberJobSpec *
fiber_job_spec_ref (FiberJobSpec *spec)
{
  g_return_val_if_fail (spec != NULL, NULL);

  g_atomic_ref_count_inc (&spec->ref);
  return spec;
}

/**
 * fiber_job_spec_unref:
 * @spec: (transfer full): a #FiberJobSpec
 *
 * Drops one reference; frees @spec when it was the last one.
 */
void
fiber_job_spec_unref (FiberJobSpec *spec)
{
  g_return_if_fail (spec != NULL);

  if (!g_atomic_ref_count_dec (&spec->ref))
    return;
  g_strfreev (spec->argv);
  g_hash_table_unref (spec->env);
  g_free (spec->name);
  g_free (spec->cwd);
  g_free (spec);
}

/**
 * fiber_job_spec_get_argv:
 * @spec: a #FiberJobSpec
 *
 * Gets the command line of the job.
 *
 * Returns: (transfer none) (array zero-terminated=1): the command line
 */
const char * const *
fiber_job_spec_get_argv (FiberJobSpec *spec)
{
  g_return_val_if_fail (spec != NULL, NULL);

  return (const char * const *) spec->argv;
}

/**
 * fiber_job_spec_setenv:
 * @spec: a #FiberJobSpec
 * @key: the variable name (no `=`)
 * @value: (nullable): its value, or %NULL to remove the variable from the
 *   environment the job would otherwise inherit
 *
 * Sets a variable of the job's environment, on top of the environment of
 * the calling process (local jobs) or of the scheduler's default (remote
 * jobs).
 */
void
fiber_job_spec_setenv (FiberJobSpec *spec,
                       const char   *key,
                       const char   *value)
{
  g_return_if_fail (spec != NULL);
  g_return_if_fail (key != NULL && *key != '\0' && strchr (key, '=') == NULL);

  g_hash_table_replace (spec->env, g_strdup (key), g_strdup (value));
}

/**
 * fiber_job_spec_getenv:
 * @spec: a #FiberJobSpec
 * @key: a variable name
 *
 * Gets a variable of the job's environment.
 *
 * Returns: (nullable): the value set with fiber_job_spec_setenv(), or
 *   %NULL when it is not set (or set to be removed)
 */
const char *
fiber_job_spec_getenv (FiberJobSpec *spec,
                       const char   *key)
{
  g_return_val_if_fail (spec != NULL, NULL);
  g_return_val_if_fail (key != NULL, NULL);

  return g_hash_table_lookup (spec->env, key);
}

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

/**
 * fiber_job_spec_get_environment:
 * @spec: a #FiberJobSpec
 *
 * The variables set on @spec (not the inherited ones), as `KEY=VALUE`
 * strings sorted by key.  Variables set to be removed are not listed.
 *
 * Returns: (transfer full) (array zero-terminated=1): the variables
 */
char **
fiber_job_spec_get_environment (FiberJobSpec *spec)
{
  g_autoptr(GPtrArray) list = NULL;
  GHashTableIter iter;
  gpointer key, value;

  g_return_val_if_fail (spec != NULL, NULL);

  list = g_ptr_array_new ();
  g_hash_table_iter_init (&iter, spec->env);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (value != NULL)
      g_ptr_array_add (list, g_strconcat (key, "=", value, NULL));
  g_ptr_array_sort (list, compare_strings);
  g_ptr_array_add (list, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&list), FALSE);
}

/* @envp (transfer full) overlaid with the variables of @spec. */
char **
_fiber_job_spec_apply_environment (FiberJobSpec  *spec,
                                   char         **envp)
{
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, spec->env);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      if (value != NULL)
        envp = g_environ_setenv (envp, key, value, TRUE);
      else
        envp = g_environ_unsetenv (envp, key);
    }
  return envp;
}

/**
 * fiber_job_spec_set_name:
 * @spec: a #FiberJobSpec
 * @name: (nullable): a human-readable job name (the Slurm job name, the
 *   Kubernetes Job name prefix)
 *
 * Sets the name of the job.
 */
void
fiber_job_spec_set_name (FiberJobSpec *spec,
                         const char   *name)
{
  g_return_if_fail (spec != NULL);

  g_free (spec->name);
  spec->name = g_strdup (name);
}

/**
 * fiber_job_spec_get_name:
 * @spec: a #FiberJobSpec
 *
 * Gets the name of the job.
 *
 * Returns: (nullable): the job name
 */
const char *
fiber_job_spec_get_name (FiberJobSpec *spec)
{
  g_return_val_if_fail (spec != NULL, NULL);

  return spec->name;
}

/**
 * fiber_job_spec_set_cwd:
 * @spec: a #FiberJobSpec
 * @cwd: (nullable) (type filename): the working directory of the job, or
 *   %NULL for the caller's (local) or the scheduler's default (remote)
 *
 * Sets the working directory the job starts in.
 */
void
fiber_job_spec_set_cwd (FiberJobSpec *spec,
                        const char   *cwd)
{
  g_return_if_fail (spec != NULL);

  g_free (spec->cwd);
  spec->cwd = g_strdup (cwd);
}

/**
 * fiber_job_spec_get_cwd:
 * @spec: a #FiberJobSpec
 *
 * Gets the working directory of the job.
 *
 * Returns: (nullable) (type filename): the working directory
 */
const char *
fiber_job_spec_get_cwd (FiberJobSpec *spec)
{
  g_return_val_if_fail (spec != NULL, NULL);

  return spec->cwd;
}

/**
 * fiber_job_spec_set_daemon:
 * @spec: a #FiberJobSpec
 * @daemon: whether the job must end when the process that started it ends
 *
 * Marks the job as daemonic.  The local backend then tells the child
 * which process to watch (`FIBER_PARENT_PID`), and a child that called
 * fiber_init() exits as soon as that process is gone, even when it was
 * killed with `SIGKILL`.
 */
void
fiber_job_spec_set_daemon (FiberJobSpec *spec,
                           gboolean      daemon)
{
  g_return_if_fail (spec != NULL);

  spec->daemon = !!daemon;
}

/**
 * fiber_job_spec_get_daemon:
 * @spec: a #FiberJobSpec
 *
 * Gets whether the job is a daemon.
 *
 * Returns: whether the job is daemonic
 */
gboolean
fiber_job_spec_get_daemon (FiberJobSpec *spec)
{
  g_return_val_if_fail (spec != NULL, FALSE);

  return spec->daemon;
}

/**
 * fiber_job_spec_set_cpus:
 * @spec: a #FiberJobSpec
 * @cpus: CPUs the job needs (a resource hint for schedulers; at least 1)
 *
 * Sets how many CPUs a scheduler should reserve for the job.  The local
 * backend ignores it.
 */
void
fiber_job_spec_set_cpus (FiberJobSpec *spec,
                         guint         cpus)
{
  g_return_if_fail (spec != NULL);

  spec->cpus = MAX (cpus, 1);
}

/**
 * fiber_job_spec_get_cpus:
 * @spec: a #FiberJobSpec
 *
 * Gets the number of CPUs the job asks for.
 *
 * Returns: the CPUs the job needs
 */
guint
fiber_job_spec_get_cpus (FiberJobSpec *spec)
{
  g_return_val_if_fail (spec != NULL, 1);

  return spec->cpus;
}
