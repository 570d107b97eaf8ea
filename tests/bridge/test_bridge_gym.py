"""The stand-alone Gymnasium adapter: dependencies, and RemoteEnv driving Pendulum-v1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np

from boom_control.envs.registry import make_env
from sim_bridge.testing import ServerProcess


def test_adapter_imports_neither_boom_control_nor_torch() -> None:
    code = (
        "import sys, sim_bridge.gym_server\n"
        "bad = [m for m in ('boom_control', 'torch') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_remote_env_drives_gymnasium_pendulum(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/gym.sock"
    args = ["-m", "sim_bridge.gym_server", "Pendulum-v1", "--bind", endpoint, "--seed", "3"]
    with ServerProcess(args, endpoint):
        env = make_env(f"zmq:{endpoint}", seed=3, timeout=5.0)
        local = gym.make("Pendulum-v1")
        try:
            spec = env.spec
            assert spec.task_id == "gym:Pendulum-v1"
            assert (spec.obs_dim, spec.action_dim, spec.episode_length) == (3, 1, 200)
            assert spec.control_period == 0.05
            assert spec.action_mapping.scale == (2.0,)  # [-1, 1] -> [-2, 2] N m
            o_r, _ = env.reset()
            o_l, _ = local.reset(seed=3)
            assert np.array_equal(o_r, o_l.astype(np.float32))
            rng = np.random.default_rng(0)
            for t in range(200):
                a = rng.uniform(-1, 1, 1)
                obs, reward, terminated, truncated, _ = env.step(a)
                lo, lr, _, ltrunc, _ = local.step((2.0 * a).astype(np.float32))
                assert np.array_equal(obs, lo.astype(np.float32))
                assert reward == float(lr) and not terminated
                assert truncated == (t == 199) == ltrunc
        finally:
            env.close()
            local.close()
