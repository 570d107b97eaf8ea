"""What ``boom eval`` runs: a training checkpoint or an exported bundle, as an actor together
with the environment of its task.

* a checkpoint (a ``.pt`` file, or a run folder for its ``checkpoints/latest.pt``): the
  training agent, its task built with the run's task options;
* a bundle folder (``bundle.json`` inside): the bundle's eager world model behind
  :class:`~boom_control.control.actor.BackendActor`, its task built locally with the
  recorded episode length (and, for DeepMind Control tasks, the action repeat that gives
  the recorded control period); a task whose observation contract differs is refused.

Either can run on another task than its own when the observation contracts are the same
(``task``: e.g. an ``h1:stand`` controller on ``h1:walk``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boom_control.bundle.load import BUNDLE_FILE, load_bundle
from boom_control.bundle.task import bundle_env
from boom_control.control.actor import BackendActor
from boom_control.control.factory import build_backend
from boom_control.device import resolve_device
from boom_control.envs import Env, make_env
from boom_control.errors import ConfigError, TaskError
from boom_control.train.agent import make_agent
from boom_control.train.checkpoint import load_checkpoint, resolve_checkpoint, seed_everything
from boom_control.train.config import train_config_from_saved


@dataclass(frozen=True)
class EvalSource:
    """A loaded checkpoint or bundle, ready to run episodes."""

    kind: str
    """``"checkpoint"`` or ``"bundle"``."""
    path: str
    """The resolved checkpoint file or bundle folder."""
    step: int
    """Training step the weights come from."""
    task: str
    seed: int
    """Evaluation seed (the run's unless given)."""
    device: str
    actor: Any
    """An :class:`~boom_control.train.evaluate.Actor`."""
    env: Env
    make_env: Callable[[], Env]
    """Another environment like ``env`` (to run episodes side by side)."""


def is_bundle(path: str | Path) -> bool:
    """Whether ``path`` is a bundle folder (or its ``bundle.json``)."""

    p = Path(path)
    return p.name == BUNDLE_FILE or (p / BUNDLE_FILE).is_file()


def load_source(
    path: str | Path,
    device: str = "auto",
    seed: int | None = None,
    samples: int | None = None,
    iterations: int | None = None,
    task: str | None = None,
) -> EvalSource:
    """Load a checkpoint or a bundle (see the module docstring) on ``device``.

    ``samples`` / ``iterations`` replace a bundle's planner size (what ``boom control``
    runs after fitting a budget); a checkpoint plans with its run's settings. ``task``:
    run on this task instead of the source's own (same observation contract).

    Raises:
        ValueError: a planner size was given for a checkpoint.
        TaskError: ``task`` is unknown or its observation contract differs.
    """
    if is_bundle(path):
        return load_bundle_source(path, device, seed, samples, iterations, task)
    if samples is not None or iterations is not None:
        raise ConfigError(
            "a planner size (samples, iterations) applies to an exported bundle; export the "
            "checkpoint first (boom export)"
        )
    return load_checkpoint_source(path, device, seed, task)


def load_checkpoint_source(
    path: str | Path, device: str = "auto", seed: int | None = None, task: str | None = None
) -> EvalSource:
    """The training agent of a checkpoint file or run folder (on ``task`` when given)."""

    path = resolve_checkpoint(path)
    ckpt = load_checkpoint(path)
    cfg = train_config_from_saved(ckpt["config"])
    dev = resolve_device(device)
    seed = cfg.seed if seed is None else seed
    seed_everything(seed)

    task_id = cfg.task if task is None else task

    def new_env() -> Env:
        return make_env(task_id, seed=seed, **cfg.task_options)

    env = new_env()
    if task_id != cfg.task:
        own = make_env(cfg.task, seed=seed, **cfg.task_options)
        own_contract = own.spec.contract
        own.close()
        _check_same_contract(own_contract, env, f"the run {path} ({cfg.task})")
    agent = make_agent(cfg, env.spec, dev, training=False)
    agent.load_state_dict(ckpt["agent"])
    step = int(ckpt["step"])
    return EvalSource("checkpoint", str(path), step, task_id, seed, str(dev), agent, env, new_env)


def _check_same_contract(contract: Any, env: Env, what: str) -> None:
    """Refuse (closing ``env``) a task whose observation contract is not ``contract``."""
    if env.spec.contract.hash != contract.hash:
        env.close()
        raise TaskError(
            f"{env.spec.task_id} observes differently from {what}: "
            f"{contract.diff(env.spec.contract)}"
        )


def load_bundle_source(
    path: str | Path,
    device: str = "auto",
    seed: int | None = None,
    samples: int | None = None,
    iterations: int | None = None,
    task: str | None = None,
) -> EvalSource:
    """A bundle's planner (torch backend; ``samples`` / ``iterations`` override its size)
    and its task (or ``task``)."""

    bundle = load_bundle(path)
    training = bundle.info.training
    seed = training.seed if seed is None else seed
    seed_everything(seed)
    env = bundle_env(bundle, seed, task)
    backend = build_backend(bundle, "torch", device, samples=samples, iterations=iterations)
    actor = BackendActor(backend, seed)
    step = training.step
    dev = str(backend.device)
    return EvalSource(
        "bundle",
        str(bundle.root),
        step,
        env.spec.task_id,
        seed,
        dev,
        actor,
        env,
        lambda: bundle_env(bundle, seed, task),
    )
