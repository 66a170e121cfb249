# Fiber.Pool(pool_type="remote") from Python on a real one-node Slurm.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Uses the cluster given in FIBER_SLURM_SOCKET (scripts/slurm-cluster.sh run
# exports it), else starts one with scripts/slurm-cluster.sh start in a
# fresh temporary directory and stops it (every daemon by pid) after the
# module.  Skipped without the Slurm binaries or root.

import os
import shutil
import subprocess
import tempfile
import time

import pytest
from gi.repository import Fiber, Gio

from helpers import f

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "scripts", "slurm-cluster.sh")
BINARIES = ("slurmctld", "slurmd", "slurmrestd", "munged", "squeue")


def _find(name):
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def _read_env(path):
    env = {}
    with open(path) as fp:
        for line in fp:
            key, sep, value = line.strip().partition("=")
            if sep:
                env[key] = value
    return env


@pytest.fixture(scope="module")
def cluster():
    if os.environ.get("FIBER_SLURM_SOCKET"):
        yield dict(os.environ)
        return
    missing = [b for b in BINARIES if _find(b) is None]
    if missing:
        pytest.skip("Slurm is not installed (%s not found)" % ", ".join(missing))
    if os.geteuid() != 0:
        pytest.skip("the one-node Slurm needs root")
    directory = tempfile.mkdtemp(prefix="fiber-slurm-")
    os.rmdir(directory)          # start makes it, stop removes it again
    subprocess.run([SCRIPT, "start", directory], check=True,
                   stdin=subprocess.DEVNULL)
    try:
        env = _read_env(os.path.join(directory, "cluster.env"))
        saved = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = env["SLURM_CONF"]
        yield env
    finally:
        subprocess.run([SCRIPT, "stop", directory], check=False,
                       stdin=subprocess.DEVNULL)
        if saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = saved


def _squeue(env):
    out = subprocess.run([_find("squeue"), "-h", "-o", "%i"], check=True,
                         stdout=subprocess.PIPE, text=True,
                         env=dict(os.environ, SLURM_CONF=env["SLURM_CONF"]))
    return out.stdout.split()


def test_remote_map(cluster):
    settings = Gio.Settings.new("org.fiberglib.Fiber")
    settings.set_string("remote-backend", "slurm")
    settings.set_string("slurm-socket", cluster["FIBER_SLURM_SOCKET"])
    try:
        pool = Fiber.Pool(2, pool_type="remote")
        assert pool.get_pool_type() == "remote"
        assert pool.map(f, range(100)) == [i * i for i in range(100)]
        assert pool.apply(f, (12,)) == 144
        pool.close()
        pool.join()
    finally:
        settings.reset("slurm-socket")
    # close() leaves no job of the pool in the queue.
    for _ in range(200):
        if not _squeue(cluster):
            break
        time.sleep(0.05)
    assert _squeue(cluster) == []
