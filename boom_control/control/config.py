"""``ControlConfig``: how ``boom control`` runs a bundle, loaded like the training config.

Precedence: the defaults here < ``configs/control.yaml`` < ``--config FILE`` (e.g. the
``fitted_15ms.yaml`` that ``boom profile --budget-ms 15`` writes) < ``key=value``
overrides < the command's flags. Unknown keys are refused by name.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from boom_control.config import from_dict, merge, parse_overrides, read_preset
from boom_control.control.loop import LoopConfig
from boom_control.errors import ConfigError

PRESET = "control"
"""The default preset, ``configs/control.yaml``."""


@dataclass(frozen=True)
class ControlConfig:
    """A controller run: where, how fast, which planner, on what."""

    connect: str = "tcp://127.0.0.1:5555"
    """Bridge endpoint (``boom sim``, the Gymnasium adapter or a robot)."""
    rate: float = 50.0
    """Control rate (Hz)."""
    budget_ms: float = 15.0
    """Planning budget per tick; the plan's action must be ready by then."""
    backend: Literal["torch", "torchscript", "onnx", "cudagraph"] = "torch"
    """Planner runtime."""
    device: str = "auto"
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto``; CUDA asked for and absent is an error."""
    threads: int = 0
    """CPU threads (0: the default)."""
    samples: int | None = None
    """MPPI samples (None: the bundle's)."""
    iterations: int | None = None
    """MPPI iterations (None: the bundle's)."""
    bf16: bool = False
    """Evaluate on a bf16 copy of the weights (torch, cudagraph)."""
    whole_plan: bool = True
    """Every plan is one program call per iteration count (onnx on a CPU: one ONNX Runtime
    session call; cudagraph in fp32: one CUDA graph replay); the anytime planner runs the
    largest that fits. false: iteration by iteration."""
    seed: int = 0
    """Planner noise and episode seed."""
    duration: float | None = None
    """Seconds to run (None: until stopped)."""
    stale_periods: int = 5
    """Ticks without a new observation before the neutral (damping) command."""
    rt_priority: int = 0
    """SCHED_FIFO priority of the loop thread (Linux, needs the privilege; 0: off)."""
    planner_rt_priority: int = 0
    """SCHED_FIFO priority of the planning thread (below ``rt_priority``; 0: off)."""
    policy_only: bool = False
    """Send the policy's action on every tick, no MPPI."""
    compensate: bool = False
    """Real time: plan from the latent predicted through the actions already sent that act
    after the observation was produced (latency compensation)."""
    take_over: bool = False
    """Take control of a server another controller holds (its control lease)."""
    telemetry: str | None = None
    """Per-tick log file (None: none)."""

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.budget_ms <= 0:
            raise ConfigError(f"rate and budget_ms must be > 0, got {self.rate}, {self.budget_ms}")
        if self.threads < 0 or self.stale_periods < 1:
            raise ConfigError("threads must be >= 0 and stale_periods >= 1")
        for name in ("samples", "iterations"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1 (or null: the bundle's), got {value}")
        self.loop().check()

    def loop(self) -> LoopConfig:
        """The loop's part of the settings."""
        return LoopConfig(
            rate=self.rate,
            budget_ms=self.budget_ms,
            duration=self.duration,
            seed=self.seed,
            stale_periods=self.stale_periods,
            rt_priority=self.rt_priority,
            planner_rt_priority=self.planner_rt_priority,
            policy_only=self.policy_only,
            compensate=self.compensate,
        )


def load_control_config(
    overrides: Iterable[str] | Mapping[str, Any] = (),
    presets: Iterable[str | os.PathLike] = (PRESET,),
) -> ControlConfig:
    """Defaults < ``presets`` (names in ``configs/`` or files) < ``overrides``
    (``key=value`` strings or a mapping).

    Raises:
        ConfigError: an unknown key, a value of the wrong type, or settings no tick can keep.
    """
    data: dict[str, Any] = {}
    for preset in presets:
        data = merge(data, read_preset(preset))
    update = dict(overrides) if isinstance(overrides, Mapping) else parse_overrides(overrides)
    return from_dict(ControlConfig, merge(data, update))
