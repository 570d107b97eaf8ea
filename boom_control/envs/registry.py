"""``make_env(task_id, seed=..., **options)``: the one way to build every environment.

Task ids are namespaced by family:

* ``dmc:<domain>-<task>``   DeepMind Control Suite (options: action_repeat, episode_length)
* ``h1:stand|walk|run``      embedded Unitree H1 task (options: model_path, episode_length)
* ``hb:<gym id>``            Humanoid-Bench, when ``humanoid_bench`` is importable
* ``zmq:<endpoint>``         any task served over the sim bridge (``boom sim``)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from boom_control.config import from_dict
from boom_control.envs.base import Env
from boom_control.envs.options import OPTIONS
from boom_control.errors import ConfigError, TaskError

FAMILIES = ("dmc", "h1", "hb", "zmq")


def _factory(family: str) -> Callable[..., Env]:
    if family == "dmc":
        from boom_control.envs.dmc import DMCEnv

        return DMCEnv
    if family == "h1":
        from boom_control.envs.h1 import H1Env

        return H1Env
    if family == "hb":
        from boom_control.envs.humanoid_bench import HumanoidBenchEnv

        return HumanoidBenchEnv
    if family == "zmq":
        try:
            from boom_control.envs.remote import RemoteEnv
        except ImportError as err:  # pragma: no cover - package is part of the install
            raise TaskError(f"zmq: tasks need the sim_bridge package ({err})") from None
        return RemoteEnv
    raise TaskError(
        f"unknown task family {family!r}; task ids look like "
        + ", ".join(f"'{f}:...'" for f in FAMILIES)
        + ". Run `boom tasks` to list them."
    )


def split_task_id(task_id: str) -> tuple[str, str]:
    """``"dmc:walker-walk"`` -> ``("dmc", "walker-walk")`` with a clear error when malformed."""
    if not isinstance(task_id, str) or ":" not in task_id:
        raise TaskError(
            f"task id {task_id!r} has no family prefix; use one of "
            + ", ".join(f"'{f}:<name>'" for f in FAMILIES)
            + " (for example 'dmc:walker-walk' or 'h1:walk')"
        )
    family, name = task_id.split(":", 1)
    if not name:
        raise TaskError(f"task id {task_id!r} names no task after {family!r}:")
    return family, name


def make_env(task_id: str, seed: int | None = 0, **options: Any) -> Env:
    """Build the environment for ``task_id``.

    Args:
        task_id: namespaced task id (see module docstring).
        seed: seed for the task's random initial states and noise.
        **options: family-specific options; unknown ones are rejected with the valid list.
    """
    family, name = split_task_id(task_id)
    factory = _factory(family)
    check_options(family, options)
    return factory(name, seed=seed, **options)


def check_options(family: str, options: dict[str, Any]) -> None:
    """Refuse ``options`` that are not the family's (:data:`~boom_control.envs.options.
    OPTIONS`), or of the wrong type, naming the option and the valid ones."""
    cls = OPTIONS[family]
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise TaskError(
            f"unknown option(s) {unknown} for {family}: tasks; valid options: "
            f"{', '.join(valid) or 'none'}"
        )
    try:
        from_dict(cls, options)
    except ConfigError as err:
        message = str(err).replace("config key", "task option", 1)
        raise TaskError(f"{family}: tasks: {message}") from None


def list_tasks(families: tuple[str, ...] = ("dmc", "h1", "hb")) -> list[str]:
    """Every task id of the given families that can be built on this machine."""
    ids: list[str] = []
    if "dmc" in families:
        from boom_control.envs.dmc import dmc_tasks

        ids += dmc_tasks()
    if "h1" in families:
        from boom_control.envs.h1 import H1_TASKS

        ids += [f"h1:{t}" for t in H1_TASKS]
    if "hb" in families:
        from boom_control.envs.humanoid_bench import hb_tasks

        ids += [f"hb:{t}" for t in hb_tasks()]
    return ids
