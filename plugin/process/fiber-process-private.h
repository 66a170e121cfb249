/* fiber-process-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "fiber-process.h"

G_BEGIN_DECLS

/* FALSE with FIBER_ERROR_DAEMONIC "daemonic processes are not allowed to
 * have children" when this process is a daemonic child.  Pools and
 * FiberProcess call it before starting anything. */
gboolean  _fiber_process_check_may_have_children (GError **error);

/* The authkey of this process (inherited from the parent, or random),
 * used as the HMAC key by pools that have no authkey of their own. */
GBytes   *_fiber_process_get_current_authkey     (void);

/* Adds the environment every child of this process gets: authkey,
 * parent pid, daemonic flag, name and pid assigned. */
void      _fiber_process_fill_child_env          (FiberJobSpec *spec,
                                                  const char   *name,
                                                  gboolean      daemon);

G_END_DECLS
