/* fiber-error.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fiber-error.h"

/**
 * fiber_error_quark:
 *
 * The quark of the %FIBER_ERROR domain, `fiber-error-quark`.
 *
 * Returns: the error domain
 */
G_DEFINE_QUARK (fiber-error-quark, fiber_error)
