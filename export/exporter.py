"""``boom export``: a trained run (or checkpoint) -> a verified controller bundle.

Steps: load the checkpoint with ``weights_only=True``, rebuild the eager world model, record
real observations of the task with the trained policy, write every part as ONNX (pinned
opset, dynamic batch) and TorchScript, check parity of both against the eager model on the
recorded observations and on one full MPPI plan with fixed noise, and only then move the
bundle into place. A failed parity check leaves no bundle behind.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

import boom_control
from boom_control.bundle.load import (
    BUNDLE_FILE,
    FORMAT,
    FORMAT_VERSION,
    WEIGHTS,
    Bundle,
    load_bundle,
    sha256,
    write_json,
)
from boom_control.bundle.parts import build_parts, part_specs
from boom_control.bundle.runners import EagerRunner, PartsModel
from boom_control.envs import Env
from boom_control.errors import BundleError, ParityError
from boom_control.model.world_model import WorldModel
from boom_control.planner.config import PlannerConfig
from boom_control.planner.mppi import PlanConstants
from export.parity import parity_report, record_observations
from export.writer import bundle_weights, write_onnx, write_torchscript, write_weights

log = logging.getLogger(__name__)

OPSET = 17
"""ONNX opset every part is exported with."""


def _example_inputs(
    spec, obs: torch.Tensor, model: WorldModel, consts: PlanConstants
) -> tuple[torch.Tensor, ...]:
    """Inputs for tracing a part, built from recorded observations."""
    z = model.encode(obs[:4]).detach()
    a = torch.zeros(4, model.action_dim)
    n = 8
    table = {
        "obs": obs[:4],
        "z": z,
        "action": a,
        "heads": torch.tensor([0, 1]),
        "actions": torch.zeros(consts.horizon, n, model.action_dim),
        "value_eps": torch.zeros(n, model.action_dim),
    }
    if spec.name == "rollout_value":
        table["z"] = z[:1]
    return tuple(table[t.name] for t in spec.inputs)


def _write_model(
    model: WorldModel, consts: PlanConstants, specs: dict, obs: torch.Tensor, root: Path, opset: int
) -> dict[str, Any]:
    """The model files (see :mod:`export.writer`); returns the metadata entries ``weights``,
    ``parts`` and ``torchscript``."""
    weights = bundle_weights(model)
    where = write_weights(weights, root)
    parts = build_parts(model, consts)
    examples = {name: _example_inputs(spec, obs, model, consts) for name, spec in specs.items()}
    listing = {}
    for name, spec in specs.items():
        rel = f"{Path(WEIGHTS).parent}/{name}.onnx"
        write_onnx(
            parts[name],
            examples[name],
            root / rel,
            where,
            opset,
            input_names=[t.name for t in spec.inputs],
            output_names=[t.name for t in spec.outputs],
            dynamic_axes=spec.dynamic_axes(),
        )
        listing[name] = {"onnx": rel, **spec.to_json()}
    torchscript = write_torchscript(model, {n: parts[n] for n in specs}, examples, root)
    return {"weights": WEIGHTS, "parts": listing, "torchscript": torchscript}


def _served(spec: Any) -> dict[str, Any]:
    """``{"served": {...}}`` for a task trained over the sim bridge (where it was served
    and by what), so users of the bundle learn to serve it again; ``{}`` otherwise."""
    extras = spec.extras
    if "endpoint" not in extras:
        return {}
    return {
        "served": {
            "endpoint": str(extras["endpoint"]),
            "server": str(extras.get("server")),
            "instances": extras.get("instances"),
        }
    }


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    return {
        "boom_control": boom_control.__version__,
        "torch": torch.__version__.split("+")[0],
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def exportable(model: WorldModel) -> WorldModel:
    """``model`` with the exact Mish everywhere (the same weights).

    A model trained with ``model.mish=fast`` computes Mish with a custom autograd
    function that neither the ONNX exporter nor TorchScript can trace; both forms are the
    same function (to ~1e-7), so the bundle is built from an exact-Mish twin.
    """
    return model.with_mish("exact")


def export_bundle(
    model: WorldModel,
    env: Env,
    planner_cfg: PlannerConfig,
    gamma: float,
    out: str | Path,
    *,
    size: str,
    training: dict[str, Any],
    tolerance: float = 1e-4,
    parity_steps: int = 64,
    seed: int = 0,
    opset: int = OPSET,
    overwrite: bool = False,
) -> Bundle:
    """Write a bundle for ``model`` trained on ``env``'s task.

    Args:
        model: the trained world model (moved to the CPU for export).
        env: the task it was trained on (observations are recorded from it).
        planner_cfg, gamma: planner defaults written into the bundle and the fused graph.
        out: bundle folder to create.
        size: name of the model size (informational).
        training: ``{"step": int, "eval_return": float | None, "source": str, ...}``.
        tolerance: largest parity error allowed for every part and the plan (absolute below
            1, relative to the output row's largest value above:
            ``export.parity.ERROR_MEASURE``).
    Raises:
        ParityError: an exported part or the plan differs from eager beyond ``tolerance``.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise BundleError(f"{out} exists; pass --overwrite to replace it")
    model = exportable(model.to("cpu").eval())
    spec = env.spec
    consts = PlanConstants.build(
        planner_cfg, spec.action_dim, gamma, model.cfg.num_q, torch.device("cpu"), spec.terminates
    )
    obs = record_observations(model, env, parity_steps, seed)
    specs = part_specs(
        spec.obs_dim,
        spec.action_dim,
        model.cfg.latent_dim,
        model.cfg.num_bins,
        consts.horizon,
        spec.terminates,
    )
    tmp = Path(
        tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent if out.parent.exists() else None)
    )
    try:
        files = _write_model(model, consts, specs, obs, tmp, opset)
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "task": {
                **spec.summary(),
                "observation_contract": spec.contract.to_json(),
                "action_mapping": spec.action_mapping.to_json(),
                **_served(spec),
            },
            "model": {
                "size": size,
                "config": dataclasses.asdict(model.cfg),
                "vmin": model.cfg.vmin,
                "vmax": model.cfg.vmax,
                "num_bins": model.cfg.num_bins,
                "latent_dim": model.cfg.latent_dim,
                "num_params": model.num_params(),
            },
            "planner": {
                "config": dataclasses.asdict(planner_cfg),
                "gamma": gamma,
                "iterations": consts.iterations,
            },
            "training": training,
            "opset": opset,
            **files,
            "versions": _versions(),
        }
        eager = PartsModel(EagerRunner(build_parts(model, consts)), model.bins, spec.terminates)
        report = parity_report(eager, tmp, meta, obs, consts, tolerance, seed)
        write_json(tmp / "parity.json", report)
        parity = {
            "tolerance": tolerance,
            "passed": report["passed"],
            "max_error": report["max_error"],
        }
        written = sorted(p for p in tmp.rglob("*") if p.is_file())
        checksums = {str(p.relative_to(tmp)): sha256(p) for p in written}
        write_json(tmp / BUNDLE_FILE, {**meta, "parity": parity, "files": checksums})
        if not report["passed"]:
            raise ParityError(
                f"parity check failed (max error {report['max_error']:.3g} > "
                f"tolerance {tolerance:g}); no bundle written. Details:\n"
                + "\n".join(report["failures"])
            )
        if out.exists():
            _keep_notes(out, tmp)
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    log.info("bundle written to %s", out)
    return load_bundle(out, spec.contract)


def _keep_notes(old: Path, new: Path) -> None:
    """Copy into ``new`` the files of the bundle folder ``old`` that its ``bundle.json``
    does not list and ``new`` does not hold (notes kept beside a bundle, e.g. TRAINING.md),
    so ``--overwrite`` replaces the bundle and keeps them."""
    try:
        listed = set(json.loads((old / BUNDLE_FILE).read_text()).get("files", {}))
    except (OSError, ValueError, AttributeError):
        listed = set()
    for path in sorted(p for p in old.rglob("*") if p.is_file()):
        rel = path.relative_to(old)
        if str(rel) in listed or rel.name == BUNDLE_FILE or (new / rel).exists():
            continue
        (new / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, new / rel)
        log.info("kept %s from the bundle it replaces", rel)


def export_run(
    source: str | Path,
    out: str | Path,
    tolerance: float = 1e-4,
    parity_steps: int = 64,
    overwrite: bool = False,
) -> Bundle:
    """Export a run folder (its latest checkpoint) or a checkpoint file."""
    from boom_control.config import from_dict
    from boom_control.envs import make_env
    from boom_control.train.checkpoint import load_checkpoint, resolve_checkpoint
    from boom_control.train.config import TrainConfig
    from boom_control.train.trainer import make_agent

    path = resolve_checkpoint(source)
    ckpt = load_checkpoint(path)
    cfg = from_dict(TrainConfig, ckpt["config"])
    env = make_env(cfg.task, seed=cfg.seed, **cfg.task_options)
    agent = make_agent(cfg, env.spec, torch.device("cpu"), training=False)
    agent.load_state_dict(ckpt["agent"])
    last_eval = ckpt.get("counters", {}).get("last_eval")
    training = {
        "source": str(path),
        "step": int(ckpt["step"]),
        # None when the run never evaluated (NaN is not JSON)
        "eval_return": None if last_eval is None or math.isnan(last_eval) else float(last_eval),
        "seed": cfg.seed,
        "init_from": cfg.init_from,  # the run's networks started from there (or None)
    }
    log.info("exporting %s (step %d, %s)", path, training["step"], cfg.task)
    try:
        return export_bundle(
            agent.model,
            env,
            cfg.planner,
            agent.gamma,
            out,
            size=cfg.model.size,
            training=training,
            tolerance=tolerance,
            parity_steps=parity_steps,
            seed=cfg.seed,
            overwrite=overwrite,
        )
    finally:
        env.close()
