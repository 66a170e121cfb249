/* fiber-test-util.h — shared checks for the C test suites
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Call first thing in main(), before g_test_init(): points TMPDIR (and so
 * every private runtime directory the library makes) at a fresh directory
 * and remembers it. */
void      fiber_test_init_environment (void);

/* Asserts that this process has no child processes left (waiting up to
 * @grace_msec for them to exit) and that the test's TMPDIR is empty:
 * no socket files, runtime dirs or temp files left behind. */
void      fiber_test_assert_no_leaks  (int grace_msec);

/* Same as above, without asserting: returns how many children exist. */
guint     fiber_test_count_children   (void);

/* Lists the pids of this process' direct children (from /proc). */
GArray   *fiber_test_list_children    (void);

/* TRUE when @pid exists (and is not a zombie). */
gboolean  fiber_test_pid_alive        (GPid pid);

/* Whether @fd becomes readable within @timeout_msec (0: now). */
gboolean  fiber_test_fd_readable      (int fd,
                                       int timeout_msec);

/* Removes the test's TMPDIR (call at the very end, after the last check). */
void      fiber_test_cleanup_environment (void);

G_END_DECLS
