"""The task a bundle was trained on, built here with the bundle's episode length and
control period, its observation contract checked."""

from __future__ import annotations

import math
from typing import Any

from boom_control.envs import Env, make_env, split_task_id
from boom_control.errors import TaskError

EPISODE_OPTION_FAMILIES = ("dmc", "h1", "hb", "zmq")  # tasks that take episode_length


def bundle_env(bundle: Any, seed: int, task: str | None = None) -> Env:
    """The task of ``bundle`` (an :class:`boom_control.bundle.load.Bundle`), or ``task`` instead,
    built here with the bundle's episode length and control period; its observation
    contract is checked.

    Raises:
        TaskError: the task cannot be built with the bundle's control period.
        boom_control.bundle.load.BundleError: the observation contracts differ.
    """
    meta = bundle.info.task
    task_id = bundle.task_id if task is None else task
    if task is None and meta.served is not None:
        raise TaskError(
            f"{bundle.root} was trained on {task_id}, served over the sim bridge by "
            f"{meta.served.server} at {meta.served.endpoint}: serve that task again and "
            "pass its endpoint, e.g. --task zmq:tcp://127.0.0.1:5555"
        )
    family, _ = split_task_id(task_id)
    options: dict[str, Any] = {}
    if family in EPISODE_OPTION_FAMILIES:
        options["episode_length"] = meta.episode_length
    period = meta.control_period
    if family == "dmc":
        # The suite's own control step, then as many of them as the bundle's period holds.
        probe = make_env(task_id, seed=seed, action_repeat=1)
        options["action_repeat"] = max(1, round(period / probe.spec.control_period))
        probe.close()
    env = make_env(task_id, seed=seed, **options)
    if not math.isclose(env.spec.control_period, period, rel_tol=1e-6):
        env.close()
        raise TaskError(
            f"{task_id} steps every {env.spec.control_period} s here; the bundle "
            f"{bundle.root} was trained at {period} s per step"
        )
    try:
        bundle.check_contract(env.spec.contract, where=f"{task_id} built here")
    except Exception:
        env.close()
        raise
    return env
