/* fiber-version.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fiber-version.h"

/**
 * fiber_get_major_version:
 *
 * Gets the major version of the library in use.
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
 * Gets the minor version of the library in use.
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
 * Gets the micro version of the library in use.
 *
 * Returns: the micro version of the library at run time
 */
guint
fiber_get_micro_version (void)
{
  return FIBER_MICRO_VERSION;
}
