"""``python -m sim_bridge``: the bridge's one stand-alone entry point dispatches to its
servers and explains itself."""

from __future__ import annotations

import subprocess
import sys


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sim_bridge", *args], capture_output=True, text=True, timeout=60
    )


def test_the_entry_point_lists_its_servers_and_dispatches():
    bare = _run()
    assert bare.returncode == 2 and "gym" in bare.stderr and "robot" in bare.stderr
    listed = _run("--help")
    assert listed.returncode == 0 and "python -m sim_bridge {gym,robot}" in listed.stdout
    gym = _run("gym", "--help")
    assert gym.returncode == 0 and "usage: python -m sim_bridge gym" in gym.stdout
    assert "--max-instances" in gym.stdout and "--client-timeout" in gym.stdout
    robot = _run("robot", "--help")
    assert robot.returncode == 0 and "usage: python -m sim_bridge robot" in robot.stdout
    wrong = _run("nope")
    assert wrong.returncode == 2 and "unknown server 'nope'" in wrong.stderr
