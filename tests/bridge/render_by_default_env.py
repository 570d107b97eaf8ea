"""A Gymnasium MuJoCo env that, like Humanoid-Bench's, renders by default and opens its
OpenGL context in its constructor: made without a display it fails unless
``render_mode=None`` is passed (the Gymnasium adapter's headless start is tested on it)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.envs.mujoco.inverted_pendulum_v5 import InvertedPendulumEnv

ENV_ID = "RendersByDefault-v0"


class RendersByDefault(InvertedPendulumEnv):
    def __init__(self, render_mode: str | None = "rgb_array", **kwargs: Any) -> None:
        super().__init__(render_mode=render_mode, **kwargs)
        if render_mode is not None:
            self.render()  # the OpenGL context is made here, as Humanoid-Bench's viewer is


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=RendersByDefault, max_episode_steps=200)
