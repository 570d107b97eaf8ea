"""The Gymnasium adapter starts on a machine without a display, serving an env that renders
by default (as Humanoid-Bench's do): it makes envs with ``render_mode=None``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from boom_control.envs import make_env
from sim_bridge.testing import ServerProcess

TESTS = str(Path(__file__).parent)
NO_DISPLAY = {
    "DISPLAY": None,
    "WAYLAND_DISPLAY": None,
    "MUJOCO_GL": "glfw",  # what a desktop default would pick: needs a display
    "PYTHONPATH": os.pathsep.join(p for p in (TESTS, os.environ.get("PYTHONPATH")) if p),
}


def _headless_env() -> dict[str, str]:
    env = {**os.environ, **NO_DISPLAY}
    return {k: v for k, v in env.items() if v is not None}


def test_adapter_serves_a_render_by_default_env_without_a_display(tmp_path):
    made = subprocess.run(
        [
            sys.executable,
            "-c",
            "import render_by_default_env as m, gymnasium as g; g.make(m.ENV_ID)",
        ],
        env=_headless_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if made.returncode == 0:
        pytest.skip("this machine can open an OpenGL context without a display")
    endpoint = f"ipc://{tmp_path}/gym.sock"
    server = ["-m", "sim_bridge", "gym", "RendersByDefault-v0"]
    args = [*server, "--import", "render_by_default_env", "--bind", endpoint]
    log = tmp_path / "server.log"
    with ServerProcess(args, endpoint, env=NO_DISPLAY, log=log):
        env = make_env(f"zmq:{endpoint}", seed=0)
        try:
            obs, _ = env.reset(seed=1)
            assert obs.shape == (4,)
            assert np.isfinite(env.step(np.zeros(1))[0]).all()
            assert [f["key"] for f in env.spec.contract.to_json()["fields"]] == ["qpos", "qvel"]
        finally:
            env.close()
    assert "names from the MuJoCo state" in log.read_text()
