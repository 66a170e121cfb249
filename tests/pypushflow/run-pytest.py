#!/usr/bin/python3
# run-pytest.py — fetch pypushflow (if needed), then run pytest against it
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   run-pytest.py FETCH_SCRIPT DEST [--suite] -- PYTEST_ARGS…
#
# Downloads python3-pypushflow into DEST with FETCH_SCRIPT (a failed
# download fails the test: it never skips), puts its site directory on
# PYTHONPATH and runs `python3 -m pytest PYTEST_ARGS`.  With --suite the
# path of pypushflow's concurrency tests is appended to the arguments.

import os
import subprocess
import sys


def main(argv):
    if "--" not in argv:
        sys.stderr.write(__doc__)
        return 2
    sep = argv.index("--")
    opts, pytest_args = argv[1:sep], argv[sep + 1:]
    fetch, dest = opts[0], opts[1]
    suite = "--suite" in opts[2:]

    proc = subprocess.run(["/bin/sh", fetch, dest])
    if proc.returncode != 0:
        sys.stderr.write("run-pytest: fetching pypushflow failed (exit %d)\n" % proc.returncode)
        return 1

    site = os.path.join(dest, "usr", "lib", "python3", "dist-packages")
    if not os.path.isdir(os.path.join(site, "pypushflow")):
        sys.stderr.write("run-pytest: %s has no pypushflow package\n" % site)
        return 1
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (site, env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    if suite:
        pytest_args = pytest_args + [os.path.join(site, "pypushflow", "tests", "concurrent")]
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"] + pytest_args
    os.execve(sys.executable, cmd, env)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
