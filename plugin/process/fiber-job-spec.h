/* fiber-job-spec.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(FIBER_INSIDE) && !defined(FIBER_COMPILATION)
# error "Only <fiber.h> can be included directly."
#endif

#include <glib-object.h>

#include "fiber-version.h"

G_BEGIN_DECLS

#define FIBER_TYPE_JOB_SPEC (fiber_job_spec_get_type ())

/**
 * FiberJobSpec:
 *
 * What a backend needs to start one job: the command line of the worker,
 * extra environment, working directory, a name, and resource hints.
 *
 * A reference-counted boxed type; the setters may only be used before the
 * spec is handed to fiber_backend_create_job().
 */
typedef struct _FiberJobSpec FiberJobSpec;

FIBER_AVAILABLE_IN_ALL
GType               fiber_job_spec_get_type          (void) G_GNUC_CONST;
FIBER_AVAILABLE_IN_ALL
FiberJobSpec       *fiber_job_spec_new               (const char * const *argv);
FIBER_AVAILABLE_IN_ALL
FiberJobSpec       *fiber_job_spec_ref               (FiberJobSpec       *spec);
FIBER_AVAILABLE_IN_ALL
void                fiber_job_spec_unref             (FiberJobSpec       *spec);
FIBER_AVAILABLE_IN_ALL
const char * const *fiber_job_spec_get_argv          (FiberJobSpec       *spec);
FIBER_AVAILABLE_IN_ALL
void                fiber_job_spec_setenv            (FiberJobSpec       *spec,
                                                      const char         *key,
                                                      const char         *value);
FIBER_AVAILABLE_IN_ALL
const char         *fiber_job_spec_getenv            (FiberJobSpec       *spec,
                                                      const char         *key);
FIBER_AVAILABLE_IN_ALL
char              **fiber_job_spec_get_environment   (FiberJobSpec       *spec);
FIBER_AVAILABLE_IN_ALL
void                fiber_job_spec_set_name          (FiberJobSpec       *spec,
                                                      const char         *name);
FIBER_AVAILABLE_IN_ALL
const char         *fiber_job_spec_get_name          (FiberJobSpec       *spec);
FIBER_AVAILABLE_IN_ALL
void                fiber_job_spec_set_cwd           (FiberJobSpec       *spec,
                                                      const char         *cwd);
FIBER_AVAILABLE_IN_ALL
const char         *fiber_job_spec_get_cwd           (FiberJobSpec       *spec);
FIBER_AVAILABLE_IN_ALL
void                fiber_job_spec_set_daemon        (FiberJobSpec       *spec,
                                                      gboolean            daemon);
FIBER_AVAILABLE_IN_ALL
gboolean            fiber_job_spec_get_daemon        (FiberJobSpec       *spec);
FIBER_AVAILABLE_IN_ALL
void                fiber_job_spec_set_cpus          (FiberJobSpec       *spec,
                                                      guint               cpus);
FIBER_AVAILABLE_IN_ALL
guint               fiber_job_spec_get_cpus          (FiberJobSpec       *spec);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FiberJobSpec, fiber_job_spec_unref)

G_END_DECLS
