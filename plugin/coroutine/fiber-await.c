/* fiber-await.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fiber-await.h"
#include "fiber-error.h"

/**
 * fiber_sleep:
 * @seconds: how long to sleep
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for an error
 *
 * Sleeps for @seconds.  In a coroutine of a coroutine pool other coroutines
 * run meanwhile; elsewhere the calling thread blocks.  Cancelling
 * @cancellable wakes the sleeper early with %G_IO_ERROR_CANCELLED.
 *
 * Returns: %TRUE after the full sleep, %FALSE if cancelled
 */
gboolean
fiber_sleep (double         seconds,
             GCancellable  *cancellable,
             GError       **error)
{
  gint64 deadline;
  GPollFD pfd;
  gboolean have_fd;

  if (seconds < 0 || seconds != seconds)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "sleep length must be a non-negative number of seconds");
      return FALSE;
    }

  deadline = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);
  have_fd = g_cancellable_make_pollfd (cancellable, &pfd);

  for (;;)
    {
      gint64 now = g_get_monotonic_time ();
      int timeout_ms;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        break;
      if (now >= deadline)
        {
          if (have_fd)
            g_cancellable_release_fd (cancellable);
          return TRUE;
        }
      timeout_ms = (int) MIN ((deadline - now + 999) / 1000, G_MAXINT);
      if (have_fd)
        g_poll (&pfd, 1, timeout_ms);
      else
        g_usleep (deadline - now);
    }

  if (have_fd)
    g_cancellable_release_fd (cancellable);
  return FALSE;
}
