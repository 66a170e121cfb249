/* fiber-version.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fiber-version.h"

/**
 * fiber_get_major_version:
 *
 * Returns: the major version of the library at run time
 */
guint
fiber_get_major_version (void)
{
  return FIBER_MAJOR_VERSION;
}

/**
 * fiber_get_minor_version:
 *
 * Returns: the minor version of the library at run time
 */
guint
fiber_get_minor_version (void)
{
  return FIBER_MINOR_VERSION;
}

/**
 * fiber_get_micro_version:
 *
 * Returns: the micro version of the library at run time
 */
guint
fiber_get_micro_version (void)
{
  return FIBER_MICRO_VERSION;
}
