/* fiber-slurm-backend.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(FIBER_INSIDE) && !defined(FIBER_COMPILATION)
# error "Only <fiber.h> can be included directly."
#endif

#include "fiber-backend.h"

G_BEGIN_DECLS

#define FIBER_TYPE_SLURM_BACKEND (fiber_slurm_backend_get_type ())

FIBER_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (FiberSlurmBackend, fiber_slurm_backend, FIBER, SLURM_BACKEND, GObject)

FIBER_AVAILABLE_IN_ALL
FiberBackend *fiber_slurm_backend_new             (const char        *address);
FIBER_AVAILABLE_IN_ALL
char         *fiber_slurm_backend_dup_api_version (FiberSlurmBackend *self);

G_END_DECLS
