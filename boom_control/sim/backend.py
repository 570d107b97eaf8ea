"""Any task of ``boom_control.envs`` as a bridge backend; ``boom sim TASK --bind
tcp://127.0.0.1:5555 --mode lockstep|realtime`` runs :func:`serve_task`."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from boom_control.envs.base import Env
from sim_bridge.protocol import contract_hash
from sim_bridge.server import BridgeServer, ServerConfig
from sim_bridge.transport import check_bind


class SimBackend:
    """Adapts a :class:`boom_control.envs.base.Env` to the server's backend interface."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self._neutral = env.spec.action_mapping.neutral(env.spec.action_dim)

    def describe(self) -> dict[str, Any]:
        spec = self.env.spec
        contract = spec.contract.to_json()
        assert contract_hash(contract) == spec.contract.hash
        return {
            **spec.summary(),
            "contract": contract,
            "action_mapping": spec.action_mapping.to_json(),
            "success_return": spec.success_return,
            "waits_for_first_action": True,  # a simulator: time can stand still
        }

    def reset(self, seed: int | None) -> tuple[np.ndarray, dict[str, Any]]:
        return self.env.reset(seed)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        return self.env.step(action)

    def neutral_action(self) -> np.ndarray:
        return self._neutral

    def warm_up(self, seed: int | None) -> None:
        """Take one step now so the first real-time tick does not pay for just-in-time
        compilation or first-touch allocation (hundreds of ms on a cold cache), then
        reset with ``seed`` again."""
        self.env.reset(seed)
        self.env.step(self._neutral)
        self.env.reset(seed)

    def estop(self) -> None:
        """A simulator has nothing to cut; the server applies the neutral action."""

    def close(self) -> None:
        self.env.close()


def serve_task(
    task_id: str,
    config: ServerConfig,
    seed: int | None = 0,
    stop: threading.Event | None = None,
    **options: Any,
) -> None:
    """Build ``task_id`` with ``make_env`` and serve it until SIGINT/SIGTERM or ``stop``.

    In lockstep every client gets its own instance of the task (up to
    ``config.max_instances``), built with the same seed and options."""
    from boom_control.envs.registry import make_env

    if task_id.startswith("zmq:"):
        raise ValueError("serving a zmq: task would chain bridges; serve the task itself")
    check_bind(config.endpoint, config.allow_remote)  # before paying for the model

    def build() -> SimBackend:
        return SimBackend(make_env(task_id, seed=seed, **options))

    backend = build()
    if config.mode == "realtime":
        backend.warm_up(seed)
    BridgeServer(backend, config, make_backend=build).serve(stop)
