/* remote-test-util.h — helpers shared by the remote suites
 * (test-slurm-backend, test-remote-pool, test-kubernetes-backend)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Compiled into each of those tests (tests/c/meson.build:
 * c_test_extra_sources), with the fiber API the test itself links.
 */

#pragma once

#include <fiber.h>

G_BEGIN_DECLS

/* @name on PATH, else in /usr/sbin (slurmctld, munged…); NULL if neither. */
char     *fiber_test_find_binary        (const char *name);

/* Call in main() after fiber_init() and before fiber_test_init_environment():
 * notes whether Slurm is installed and, when it is but no cluster is given
 * (FIBER_SLURM_SOCKET unset), runs this program again under
 * scripts/slurm-cluster.sh run, which starts a one-node cluster and stops
 * it afterwards.  Returns FALSE (after a message naming @test_name) when
 * that cannot be done; does not return when it re-executes. */
gboolean  fiber_test_slurm_init         (const char  *test_name,
                                         int          argc,
                                         char       **argv);
/* Frees what fiber_test_slurm_init() noted; call at the end of main(). */
void      fiber_test_slurm_cleanup      (void);

/* Skips the running test case when Slurm is not installed; returns TRUE
 * then (the test case should return at once). */
gboolean  fiber_test_skip_without_slurm (void);

/* Runs `scancel ID`; TRUE when it succeeded. */
gboolean  fiber_test_scancel            (gint64 id);

/* The pid in environment variable @name (set by slurm-cluster.sh). */
GPid      fiber_test_env_pid            (const char *name);

/* Waits until @job is in @state, asserting it gets there within
 * @timeout_msec (a guard, not a performance check). */
void      fiber_test_wait_for_job_state (FiberJob      *job,
                                         FiberJobState  state,
                                         guint          timeout_msec);

G_END_DECLS
