# slurm_plugin.py — a one-node Slurm for pypushflow's suite on fiber-remote
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""pytest plugin (``-p slurm_plugin``, with this directory on sys.path):
starts the one-node Slurm of scripts/slurm-cluster.sh for the session (or
uses the one FIBER_SLURM_SOCKET names) and points the ``remote`` pool type
at it through GSettings (the memory backend of the test environment), so
``fiber-remote`` pools run their workers as Slurm jobs.  Every daemon is
stopped by pid at the end (the script's stop)."""

import os
import shutil
import subprocess
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "scripts", "slurm-cluster.sh")
BINARIES = ("slurmctld", "slurmd", "slurmrestd", "munged", "squeue")

_state = {}


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


def pytest_configure(config):
    socket = os.environ.get("FIBER_SLURM_SOCKET")
    if not socket:
        missing = [b for b in BINARIES if _find(b) is None]
        if missing or os.geteuid() != 0:
            _state["skip"] = "the one-node Slurm needs root and %s" % ", ".join(BINARIES)
            return
        directory = tempfile.mkdtemp(prefix="fiber-slurm-")
        os.rmdir(directory)          # start makes it, stop removes it again
        subprocess.run([SCRIPT, "start", directory], check=True, stdin=subprocess.DEVNULL)
        _state["directory"] = directory
        env = _read_env(os.path.join(directory, "cluster.env"))
        os.environ["SLURM_CONF"] = env["SLURM_CONF"]
        socket = env["FIBER_SLURM_SOCKET"]
    from gi.repository import Gio
    settings = Gio.Settings.new("org.fiberglib.Fiber")
    settings.set_string("remote-backend", "slurm")
    settings.set_string("slurm-socket", socket)


def pytest_collection_modifyitems(config, items):
    reason = _state.get("skip")
    if reason:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_unconfigure(config):
    directory = _state.pop("directory", None)
    if directory:
        subprocess.run([SCRIPT, "stop", directory], check=False, stdin=subprocess.DEVNULL)
