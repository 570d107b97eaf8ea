"""Parity of exported parts against the eager model, on real observations of the task.

For every part and every backend (ONNX Runtime on the CPU, TorchScript) the report holds
the maximum absolute error against eager PyTorch; then one full MPPI plan with fixed noise
runs through each backend and its action is compared with the eager plan's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from boom_control.bundle.load import Bundle
from boom_control.bundle.runners import PartsModel
from boom_control.envs import Env
from boom_control.model.world_model import WorldModel
from boom_control.planner.mppi import PlanConstants, draw_noise, initial_state, plan


@torch.no_grad()
def record_observations(model: WorldModel, env: Env, steps: int, seed: int) -> torch.Tensor:
    """``(steps, O)`` observations of the task under the model's deterministic policy."""
    obs, _ = env.reset(seed=seed)
    out = []
    for _ in range(steps):
        out.append(obs)
        z = model.encode(torch.as_tensor(obs).unsqueeze(0))
        action = model.pi(z, torch.zeros(1, env.spec.action_dim))[1]["mean"][0].numpy()
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset()
    return torch.as_tensor(np.stack(out))


def part_inputs(
    eager: PartsModel, obs: torch.Tensor, consts: PlanConstants, seed: int, samples: int = 64
) -> dict[str, tuple[torch.Tensor, ...]]:
    """Inputs of every part, derived from ``(B, O)`` observations.

    Latents are the encoded observations, actions the policy's means, and the rollout
    scores ``samples`` random sequences from the first latent with the last and first
    Q heads.
    """
    gen = torch.Generator().manual_seed(seed)
    z = eager.encode(obs)
    a = eager.pi(z, torch.zeros(z.shape[0], consts.action_dim))[1]["mean"]
    heads = torch.tensor([consts.num_q - 1, 0])
    n = samples
    seqs = torch.rand(consts.horizon, n, consts.action_dim, generator=gen) * 2 - 1
    eps = torch.randn(n, consts.action_dim, generator=gen)
    inputs = {
        "encoder": (obs,),
        "dynamics": (z, a),
        "reward": (z, a),
        "q": (z, a, heads),
        "policy": (z,),
        "rollout_value": (z[:1], seqs, eps, heads),
    }
    if eager.terminates:
        inputs["termination"] = (z,)
    return inputs


ERROR_MEASURE = "|exported - eager| / max(1, max |eager| over the output's last dimension)"
"""Absolute below 1, relative to the output's scale above. Float32 rounding in a layer grows
with the magnitude of what it sums, not of the result: Q and rollout values reach
hundreds, and a saturated policy head puts pre-tanh means of +-100 next to one near zero
in the same row, whose rounding error is then that of the row's large values. The scale
is the largest magnitude in the sample's row of the output (its last dimension), or the
element itself for outputs with one value per sample."""


def parity_error(exported: torch.Tensor, ref: torch.Tensor) -> float:
    """Largest :data:`ERROR_MEASURE` over the elements of two same-shape outputs."""
    ref = ref.double()
    scale = ref.abs() if ref.dim() < 2 else ref.abs().amax(dim=-1, keepdim=True)
    return float(((exported.double() - ref).abs() / scale.clamp(min=1.0)).max())


def _max_err(ref: tuple[torch.Tensor, ...], exported: tuple[torch.Tensor, ...]) -> float:
    return max(parity_error(y, x) for x, y in zip(ref, exported, strict=True))


def parity_report(
    eager: PartsModel,
    root: Path,
    meta: dict[str, Any],
    obs: torch.Tensor,
    consts: PlanConstants,
    tolerance: float,
    seed: int = 0,
) -> dict[str, Any]:
    """Compare every exported part and a full plan with the eager model.

    Args:
        eager: the eager model behind the planner interface.
        root: the bundle folder being written (``meta`` lists its model files).
        obs: ``(T, O)`` recorded observations.
    Returns:
        JSON-ready report with ``parts[part][backend]`` errors (:data:`ERROR_MEASURE`),
        ``plan[backend]`` errors, ``max_error``, ``passed`` and human-readable ``failures``.
    """
    cpu = torch.device("cpu")
    written = Bundle(root, meta)  # not yet checksummed: the files were just written
    backends = {
        "onnxruntime_cpu": written.model("onnx", cpu),
        "torchscript": written.model("torchscript", cpu),
    }
    inputs = part_inputs(eager, obs, consts, seed)
    parts: dict[str, dict[str, float]] = {}
    for part, args in inputs.items():
        ref = eager.run(part, *args)
        parts[part] = {name: _max_err(ref, b.run(part, *args)) for name, b in backends.items()}

    torch.manual_seed(seed)
    noise = draw_noise(consts, cpu)
    z0 = eager.encode(obs[:1])
    state = initial_state(consts, cpu)
    ref_action, ref_mu, _, _ = plan(eager, z0, state, consts, True, noise)
    plans = {}
    for name, b in backends.items():
        action, mu, _, _ = plan(b, b.encode(obs[:1]), state, consts, True, noise)
        plans[name] = {
            "action_max_error": parity_error(action, ref_action),
            "mu_max_error": parity_error(mu, ref_mu),
        }
    failures = [
        f"part {part} on {b}: {err:.3g}"
        for part, errs in parts.items()
        for b, err in errs.items()
        if not err <= tolerance
    ] + [
        f"plan on {b}: action error {e['action_max_error']:.3g}"
        for b, e in plans.items()
        if not e["action_max_error"] <= tolerance
    ]
    errors = [e for errs in parts.values() for e in errs.values()]
    errors += [e["action_max_error"] for e in plans.values()]
    return {
        "tolerance": tolerance,
        "error": ERROR_MEASURE,
        "observations": int(obs.shape[0]),
        "observations_from": written.task_id,
        "plan_action_eager": ref_action.tolist(),
        "parts": parts,
        "plan": plans,
        "max_error": max(errors),
        "passed": not failures,
        "failures": failures,
    }


def format_report(report: dict[str, Any]) -> str:
    """Plain-text table of a parity report."""
    backends = sorted(next(iter(report["parts"].values())))
    lines = [f"{'part':15}" + "".join(f"{b:>18}" for b in backends)]
    for part, errs in report["parts"].items():
        lines.append(f"{part:15}" + "".join(f"{errs[b]:18.2e}" for b in backends))
    lines.append(
        f"{'plan action':15}"
        + "".join(f"{report['plan'][b]['action_max_error']:18.2e}" for b in backends)
    )
    verdict = "PASS" if report["passed"] else "FAIL"
    lines.append(
        f"max error {report['max_error']:.2e} (tolerance {report['tolerance']:.0e}, "
        f"{report['observations']} recorded observations of {report['observations_from']}): "
        f"{verdict}"
    )
    return "\n".join(lines)
