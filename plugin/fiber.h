/* fiber.h — umbrella header of fiber-glib
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#define FIBER_INSIDE

#include "fiber-version.h"
#include "fiber-enums.h"
#include "fiber-error.h"
#include "fiber-task.h"
#include "fiber-init.h"
#include "fiber-await.h"
#include "fiber-job.h"
#include "fiber-job-spec.h"
#include "fiber-backend.h"
#include "fiber-local-backend.h"
#include "fiber-process.h"
#include "fiber-apply-result.h"
#include "fiber-map-result.h"
#include "fiber-batch.h"
#include "fiber-pool.h"
#include "fiber-process-pool.h"
#include "fiber-slurm-backend.h"
#include "fiber-kubernetes-backend.h"
#include "fiber-pool-registry.h"
#include "fiber-pool-provider.h"
#include "fiber-registry-pool-provider.h"
#include "fiber-thread-pool.h"
#include "fiber-coroutine-pool.h"
#include "fiber-config.h"
/* more public headers are listed below as their rooms land */

#undef FIBER_INSIDE
