"""The exported parts of a world model: fixed names, fixed signatures, documented shapes.

Each part is a small ``nn.Module`` around :class:`~boom_control.model.world_model.WorldModel`
heads with plain tensor inputs and outputs, so it exports the same way to ONNX and to
TorchScript. ``B`` is a dynamic batch size, ``N`` a dynamic number of action sequences,
``O``/``A``/``L`` the observation, action and latent sizes, ``K`` the bins of the discrete
regression and ``H`` the planning horizon.

* encoder: obs (B,O) -> z (B,L)
* dynamics: z (B,L), action (B,A) -> z_next (B,L)
* reward: z (B,L), action (B,A) -> reward_logits (B,K)
* q: z (B,L), action (B,A), heads (k,) int64 -> q_logits (k,B,K)
* policy: z (B,L) -> mean (B,A), log_std (B,A), both pre-tanh
* termination (tasks that can end early): z (B,L) -> logit (B,1)
* rollout_value: z (1,L), actions (H,N,A), value_eps (N,A), heads (2,) int64 -> value (N,)

``rollout_value`` is one MPPI evaluation in a single call: the discounted model return of
every action sequence plus ``gamma^H * Q_avg`` of the policy action at the last latent
(the planner's :func:`~boom_control.planner.mppi.estimate_value`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from boom_control.model.world_model import WorldModel
from boom_control.planner.mppi import PlanConstants, estimate_value


@dataclass(frozen=True)
class TensorSpec:
    """Name, symbolic shape and dtype of one input or output."""

    name: str
    shape: tuple[str | int, ...]
    dtype: str = "float32"

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class PartSpec:
    """Signature of an exported part."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def to_json(self) -> dict:
        return {
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
        }

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """ONNX dynamic axes: every symbolic dimension that is not a fixed size."""
        axes: dict[str, dict[int, str]] = {}
        for t in (*self.inputs, *self.outputs):
            dyn = {
                i: d for i, d in enumerate(t.shape) if isinstance(d, str) and d in ("B", "N", "k")
            }
            if dyn:
                axes[t.name] = dyn
        return axes


class Encoder(nn.Module):
    def __init__(self, model: WorldModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.model.encode(obs)


class Dynamics(nn.Module):
    def __init__(self, model: WorldModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.model.next(z, action)


class Reward(nn.Module):
    def __init__(self, model: WorldModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.model.reward(z, action)


class QHeads(nn.Module):
    def __init__(self, model: WorldModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor, action: torch.Tensor, heads: torch.Tensor) -> torch.Tensor:
        return self.model.Q(z, action, return_type="all", heads=heads)


class Policy(nn.Module):
    """Pre-tanh mean and log std; ``action = tanh(mean + exp(log_std) * eps)``."""

    def __init__(self, model: WorldModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.pi_params(z)


class Termination(nn.Module):
    def __init__(self, model: WorldModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.termination(z)


class RolloutValue(nn.Module):
    """Values of N action sequences from one latent (one MPPI evaluation)."""

    def __init__(self, model: WorldModel, consts: PlanConstants) -> None:
        super().__init__()
        self.model = model
        self.consts = consts

    def forward(
        self, z: torch.Tensor, actions: torch.Tensor, value_eps: torch.Tensor, heads: torch.Tensor
    ) -> torch.Tensor:
        z_n = z.expand(actions.shape[1], -1)
        return estimate_value(self.model, z_n, actions, self.consts, value_eps, heads)


def part_specs(
    obs_dim: int, action_dim: int, latent_dim: int, num_bins: int, horizon: int, terminates: bool
) -> dict[str, PartSpec]:
    """Signatures of every part for given sizes (the order is the export order)."""
    o, a, lat, k, h = obs_dim, action_dim, latent_dim, num_bins, horizon
    z, act = TensorSpec("z", ("B", lat)), TensorSpec("action", ("B", a))
    specs = {
        "encoder": PartSpec(
            "encoder", (TensorSpec("obs", ("B", o)),), (TensorSpec("z", ("B", lat)),)
        ),
        "dynamics": PartSpec("dynamics", (z, act), (TensorSpec("z_next", ("B", lat)),)),
        "reward": PartSpec("reward", (z, act), (TensorSpec("reward_logits", ("B", k)),)),
        "q": PartSpec(
            "q",
            (z, act, TensorSpec("heads", ("k",), "int64")),
            (TensorSpec("q_logits", ("k", "B", k)),),
        ),
        "policy": PartSpec(
            "policy", (z,), (TensorSpec("mean", ("B", a)), TensorSpec("log_std", ("B", a)))
        ),
        "rollout_value": PartSpec(
            "rollout_value",
            (
                TensorSpec("z", (1, lat)),
                TensorSpec("actions", (h, "N", a)),
                TensorSpec("value_eps", ("N", a)),
                TensorSpec("heads", (2,), "int64"),
            ),
            (TensorSpec("value", ("N",)),),
        ),
    }
    if terminates:
        specs["termination"] = PartSpec("termination", (z,), (TensorSpec("logit", ("B", 1)),))
    return specs


def build_parts(model: WorldModel, consts: PlanConstants) -> dict[str, nn.Module]:
    """Eval-mode modules for every part of :func:`part_specs`."""
    parts: dict[str, nn.Module] = {
        "encoder": Encoder(model),
        "dynamics": Dynamics(model),
        "reward": Reward(model),
        "q": QHeads(model),
        "policy": Policy(model),
        "rollout_value": RolloutValue(model, consts),
    }
    if model.terminates:
        parts["termination"] = Termination(model)
    return {k: v.eval() for k, v in parts.items()}
