/* fiber-builtins.c — the tasks every worker has (DESIGN §4)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <gio/gio.h>

#include "fiber-await.h"
#include "fiber-error.h"
#include "fiber-task-private.h"

static gboolean
check_args_type (GVariant            *args,
                 const GVariantType  *type,
                 const char          *task,
                 GError             **error)
{
  if (g_variant_is_of_type (args, type))
    return TRUE;
  g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
               "%s expects arguments of type %.*s, got %s", task,
               (int) g_variant_type_get_string_length (type),
               g_variant_type_peek_string (type),
               g_variant_get_type_string (args));
  return FALSE;
}

static GVariant *
task_noop (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  return g_variant_new ("()");
}

static GVariant *
task_echo (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  return g_variant_ref (args);
}

static GVariant *
task_sleep (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  double seconds;

  if (!check_args_type (args, G_VARIANT_TYPE ("(d)"), "fiber.sleep", error))
    return NULL;
  g_variant_get (args, "(d)", &seconds);
  if (!fiber_sleep (seconds, cancellable, error))
    return NULL;
  return g_variant_new ("()");
}

static GVariant *
task_fail (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  const char *message;

  if (!check_args_type (args, G_VARIANT_TYPE ("(s)"), "fiber.fail", error))
    return NULL;
  g_variant_get (args, "(&s)", &message);
  g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_TASK_FAILED, message);
  return NULL;
}

static GVariant *
bytes_to_ay (GBytes *bytes)
{
  if (bytes == NULL)
    return g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, "", 0, 1);
  return g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, bytes, TRUE);
}

/* Runs to completion on one GIO operation through a FiberAwait: in a
 * coroutine the other coroutines run meanwhile, elsewhere the thread blocks
 * on a private main context. */
static void
subprocess_wait_quietly (GSubprocess *proc)
{
  g_autoptr(FiberAwait) await = fiber_await_new ();
  GAsyncResult *result;

  g_subprocess_wait_async (proc, NULL, fiber_await_callback, await);
  result = fiber_await_wait (await, NULL);
  if (result != NULL)
    g_subprocess_wait_finish (proc, result, NULL);
}

static GVariant *
task_subprocess (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GBytes) out = NULL;
  g_autoptr(GBytes) err = NULL;
  g_autofree const char **argv = NULL;
  GAsyncResult *result;
  GVariant *tuple[3];
  int status;

  if (!check_args_type (args, G_VARIANT_TYPE ("(as)"), "fiber.subprocess", error))
    return NULL;
  g_variant_get (args, "(^a&s)", &argv);
  if (argv == NULL || argv[0] == NULL)
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                           "fiber.subprocess needs a non-empty argument vector");
      return NULL;
    }

  proc = g_subprocess_newv (argv,
                            G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                            G_SUBPROCESS_FLAGS_STDERR_PIPE,
                            error);
  if (proc == NULL)
    return NULL;

  /* communicate completes once both pipes are drained and the child exited */
  {
    g_autoptr(FiberAwait) await = fiber_await_new ();

    g_subprocess_communicate_async (proc, NULL, cancellable, fiber_await_callback, await);
    result = fiber_await_wait (await, error);
    if (result == NULL ||
        !g_subprocess_communicate_finish (proc, result, &out, &err, error))
      {
        g_subprocess_force_exit (proc);
        g_clear_object (&await);
        subprocess_wait_quietly (proc);
        return NULL;
      }
  }

  if (g_subprocess_get_if_signaled (proc))
    status = -g_subprocess_get_term_sig (proc);
  else
    status = g_subprocess_get_exit_status (proc);

  tuple[0] = g_variant_new_int32 (status);
  tuple[1] = bytes_to_ay (out);
  tuple[2] = bytes_to_ay (err);
  return g_variant_new_tuple (tuple, 3);
}

void
_fiber_register_builtin_tasks (void)
{
  _fiber_task_register_builtin ("fiber.noop", task_noop);
  _fiber_task_register_builtin ("fiber.echo", task_echo);
  _fiber_task_register_builtin ("fiber.sleep", task_sleep);
  _fiber_task_register_builtin ("fiber.fail", task_fail);
  _fiber_task_register_builtin ("fiber.subprocess", task_subprocess);
}
