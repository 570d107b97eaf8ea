"""The training loop, assembled from factories (environment, agent, buffer, logger).

Per run: a seed phase of uniform random actions (stored with ``mu = a``), then as many
updates as seed steps, each on a freshly sampled batch, then one planner step and one
update per agent step. Every ``eval_freq`` steps the agent is evaluated with the planner
and with the policy alone; every ``checkpoint_every`` steps (and at the end) the full
state is written so that ``resume`` continues with exactly the update an uninterrupted
run would have made: the environment is brought back by replaying the current episode's
actions from its reset seed.

A served task (``zmq:``) whose server hosts a single simulation has no second environment to
evaluate on: evaluations then run on the training session, each when the training episode
that was under way at its step ends. A training step whose episode the environment loses
(:class:`~boom_control.envs.base.EpisodeLostError`) stores nothing; the episode ends there
(its transitions so far stay, as a cut-short episode) and the next one starts.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from boom_control.config import dump_yaml, to_dict
from boom_control.envs import Env, EnvSpec
from boom_control.errors import ConfigError, EpisodeLostError, RunError
from boom_control.planner.types import PlanState
from boom_control.train.agent import make_agent
from boom_control.train.buffer import Batch, ReplayBuffer
from boom_control.train.checkpoint import (
    LATEST,
    checkpoint_dir,
    latest_checkpoint,
    load_checkpoint,
    resolve_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
    stream_seed,
)
from boom_control.train.config import TrainConfig, upgrade_saved_config
from boom_control.train.evaluate import env_capacity, eval_seeds, eval_workers, evaluate_both
from boom_control.train.interrupt import StopSignals
from boom_control.train.logger import RunLogger
from boom_control.train.plot import plot_run

log = logging.getLogger(__name__)

MAX_LOST_IN_A_ROW = 5
"""Training episodes the environment may lose one after another, with no step stored in
between, before training stops with the error (the environment is not coming back)."""

EnvFactory = Callable[[int], Env]
AgentFactory = Callable[[EnvSpec], Any]
BufferFactory = Callable[[EnvSpec], ReplayBuffer]


class _ProgressLog:
    """Progress as log lines (steps, steps/s, last evaluation) when no bar can be shown."""

    def __init__(self, step: int) -> None:
        self.step, self.time = step, time.monotonic()

    def log(self, step: int, total: int, last_eval: float) -> None:
        now = time.monotonic()
        rate = (step - self.step) / max(now - self.time, 1e-9)
        self.step, self.time = step, now
        log.info(
            "step %d/%d (%.1f%%), %.2f steps/s, last eval return %.1f",
            step,
            total,
            100.0 * step / max(total, 1),
            rate,
            last_eval,
        )


class Trainer:
    """Runs (or resumes) one training run.

    Args:
        cfg: the run's config (``cfg.run_dir`` must be set).
        env_factory: ``seed -> Env``; called for the training and the evaluation env.
        agent_factory: ``EnvSpec -> agent`` with ``act``/``update``/``state_dict``/``close``
            (and ``overlap``/``sync_acting`` for ``overlap_update``).
        buffer_factory: ``EnvSpec -> ReplayBuffer``.
        logger: where metrics go.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        env_factory: EnvFactory,
        agent_factory: AgentFactory,
        buffer_factory: BufferFactory,
        logger: RunLogger,
    ) -> None:
        if cfg.run_dir is None:
            raise ValueError("Trainer needs cfg.run_dir")
        self.cfg = cfg
        self.run_dir = Path(cfg.run_dir)
        self.logger = logger
        seed_everything(cfg.seed)
        self.env = env_factory(stream_seed(cfg.seed, 0))
        self.spec = self.env.spec
        self._env_factory = env_factory
        capacity = env_capacity(self.env)
        # environments beside the training one (None: no limit)
        self._eval_capacity = None if capacity is None else capacity - 1
        self._shared_eval = self._eval_capacity is not None and self._eval_capacity < 1
        self._eval_envs: list[Env] = []  # made at the first evaluation
        if self._shared_eval:
            log.info(
                "%s hosts a single simulation: evaluations run on the training session, "
                "each when the training episode under way at its step ends",
                cfg.task,
            )
        self.agent = agent_factory(self.spec)
        self._buffer_factory = buffer_factory
        self.buffer = buffer_factory(self.spec)
        self.rng = np.random.default_rng(stream_seed(cfg.seed, 2))  # seed actions, policy_acts
        self._overlap: ThreadPoolExecutor | None = None
        if cfg.overlap_update:
            self.agent.overlap(stream_seed(cfg.seed, 4))
            self._overlap = ThreadPoolExecutor(1, thread_name_prefix="boom-update")
        self.seed_steps = cfg.seed_steps_for(self.spec.episode_length)
        if self.seed_steps and self.seed_steps <= cfg.planner.horizon:
            raise ValueError(f"seed_steps={self.seed_steps} must exceed the horizon")
        self._eval_seeds = eval_seeds(cfg.seed, cfg.eval_episodes)
        # counters (all saved in checkpoints)
        self.step = 0  # agent steps taken
        self.updates = 0  # gradient updates made
        self.episodes = 0  # training episodes finished
        self.phase_start = 0  # step at which the current seed phase began
        self.last_eval = float("nan")  # planner return of the latest evaluation
        self.last_eval_result: dict[str, float] = {}
        self.eval_due = False  # an evaluation waits for the training episode to end
        self.lost_episodes = 0  # training episodes the environment lost mid-step
        self._lost_in_a_row = 0  # of them, lost without a stored step in between
        # current episode
        self.obs: np.ndarray | None = None
        self.plan_state: Any = None
        self.episode_seed = 0
        self.episode_actions: list[np.ndarray] = []
        self.episode_return = 0.0
        self._sums: dict[str, float] = {}
        self._count = 0
        self.stopped_by: str | None = None
        """Why the last :meth:`run` stopped early: "time_limit_minutes", "SIGINT" or "SIGTERM"."""
        self.distributed_stats: Any = None
        """With ``actors > 0``: the collection's counters after :meth:`run`
        (:class:`~boom_control.train.distributed.DistributedStats`)."""
        self.on_chunk: Callable[[Any, int], None] | None = None
        """With ``actors > 0``: called with the collector and the actor after each chunk
        (monitoring; see :func:`~boom_control.train.distributed.run_distributed`)."""
        self.on_save: Callable[[Path], None] | None = None
        """Called with the checkpoint's path after each :meth:`save` (a sweep on an object
        store uploads the run folder)."""

    # ------------------------------------------------------------------ loop
    def run(self) -> bool:
        """Train until ``cfg.steps`` agent steps, evaluating and checkpointing on the way.

        Returns False when ``cfg.time_limit_minutes`` or a first Ctrl-C / SIGTERM stopped
        the run first (a checkpoint to resume from is written at the end of the step;
        :attr:`stopped_by` says which), True when it reached ``cfg.steps``.
        """
        cfg = self.cfg
        stop_at = (
            None
            if cfg.time_limit_minutes is None
            else time.monotonic() + 60.0 * cfg.time_limit_minutes
        )
        if cfg.resume:
            self.resume()
        elif cfg.init_from is not None and self.step == 0:
            self.init_weights(cfg.init_from)
        dump_yaml(cfg, self.run_dir / "config.yaml")  # a later resume starts from these values
        log.info(self.buffer.describe())
        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            unit="step",
            dynamic_ncols=True,
            disable=None,
            desc=cfg.task,
        )
        progress = _ProgressLog(self.step) if bar.disable else None  # no terminal: log lines
        self.stopped_by = None
        try:
            with StopSignals() as signals:
                if self.step == 0 and cfg.eval_at_start:
                    self.evaluate()  # a Ctrl-C meanwhile stops the run once it is done
                    if signals.requested:
                        self.save()
                        self.stopped_by = signals.requested
                        log.info(
                            "stopped by %s after the first evaluation; continue with: "
                            "boom train run_dir=%s resume=true",
                            signals.requested,
                            self.run_dir,
                        )
                if cfg.actors and self.stopped_by is None:
                    from boom_control.train.distributed import run_distributed

                    run_distributed(self, stop_at, signals, bar, self.on_chunk)
                while not cfg.actors and self.step < cfg.steps and self.stopped_by is None:
                    self.step_and_learn()
                    bar.update(1)
                    if progress is not None and self.step % cfg.log_every == 0:
                        progress.log(self.step, cfg.steps, self.last_eval)
                    due = self.step % cfg.eval_freq == 0 or self.eval_due
                    if due and self._evaluate_when_free(final=self.step >= cfg.steps):
                        bar.set_postfix(eval_return=f"{self.last_eval:.1f}", refresh=False)
                    late = stop_at is not None and time.monotonic() > stop_at
                    stop = signals.requested or ("time_limit_minutes" if late else None)
                    if stop or self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                        self.save()
                    if stop and self.step < cfg.steps:
                        self.stopped_by = stop
                        log.info(
                            "stopped by %s at step %d of %d; continue with: "
                            "boom train run_dir=%s resume=true",
                            stop,
                            self.step,
                            cfg.steps,
                            self.run_dir,
                        )
                        break
        finally:
            bar.close()
            if self._overlap is not None:
                self._overlap.shutdown()
        if self.logger.eval_path.is_file():
            try:
                plot_run(self.run_dir)
            except Exception as err:  # a missing figure must not fail a finished run
                log.warning("could not draw the learning curve: %s", err)
        return self.step >= cfg.steps

    def close(self) -> None:
        """Close the log files and every environment (the trainer is done after this)."""
        self.logger.close()
        for env in {id(e): e for e in [self.env, *self._eval_envs]}.values():
            env.close()
        if self._overlap is not None:
            self._overlap.shutdown()
        self.agent.close()

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def env_step(self) -> bool:
        """One interaction: the planner's action (or, with ``policy_acts``, sometimes the
        policy's, stored with the planner's mean and std), or a random one in the seed
        phase (unless ``seed_actor=planner``). False when the environment lost the episode
        (nothing was stored; the next call starts a new one)."""
        if self.obs is None:
            self._begin_episode()
        seeding = self.step < self.phase_start + self.seed_steps
        if seeding and self.cfg.seed_actor == "random":
            action = self.rng.uniform(-1.0, 1.0, self.spec.action_dim).astype(np.float32)
            mu, std = action, np.zeros_like(action)
        else:
            action, mu, std, self.plan_state = self.agent.act(
                self.obs, self.plan_state, eval_mode=False
            )
            if not seeding and self.cfg.policy_acts and self.rng.random() < self.cfg.policy_acts:
                action = self.agent.act(self.obs, self.plan_state, False, use_planner=False)[0]
        try:
            obs, reward, terminated, truncated, _ = self.env.step(action)
        except EpisodeLostError as err:
            self._lose_episode(err)
            return False
        self.buffer.add(action, mu, std, reward, terminated, obs)
        self._lost_in_a_row = 0
        self.episode_actions.append(np.asarray(action, np.float32))
        self.episode_return += reward
        if terminated or truncated:
            self.episodes += 1
            self.logger.log(
                "episode",
                self.step + 1,
                {
                    "return": self.episode_return,
                    "length": len(self.episode_actions),
                    "episodes": self.episodes,
                },
            )
            self.obs = None
        else:
            self.obs = obs
        return True

    def _lose_episode(self, err: EpisodeLostError) -> None:
        """The environment lost the episode mid-step: store nothing for that step, end the
        episode where its last stored observation is, and start the next one."""
        self.lost_episodes += 1
        self.episodes += 1
        self._lost_in_a_row += 1
        if self._lost_in_a_row > MAX_LOST_IN_A_ROW:
            raise EpisodeLostError(
                f"{self._lost_in_a_row} training episodes in a row lost at their first "
                f"steps; the last: {err}"
            ) from err
        log.warning(
            "training episode lost after %d stored steps (%s); nothing is stored for the "
            "lost step, its earlier steps stay as a cut-short episode; starting the next "
            "episode (%d lost so far)",
            len(self.episode_actions),
            err,
            self.lost_episodes,
        )
        self.obs = None

    def _begin_episode(self) -> None:
        self.episode_seed = stream_seed(self.cfg.seed, 3, self.episodes)
        self.obs, _ = self.env.reset(seed=self.episode_seed)
        self.plan_state = self.agent.initial_plan_state()
        self.episode_actions = []
        self.episode_return = 0.0
        self.buffer.start_episode(self.obs)

    def step_and_learn(self) -> None:
        """One agent step and its learning: :meth:`env_step` then :meth:`learn`, or, with
        ``overlap_update`` after the seed phase, the step's update running in the
        background while the planner acts."""
        if self._overlap is None or self.step < self.phase_start + self.seed_steps:
            while not self.env_step():  # a lost episode: no step was taken, start another
                pass
            self.step += 1
            self.learn()
            return
        pending = self._overlap.submit(self.agent.update, self._batch())
        try:
            while not self.env_step():
                pass
        finally:
            metrics = pending.result()  # an update error surfaces here
        self.step += 1
        self._record(metrics)
        self._sync_acting()
        if self._count >= self.cfg.log_every:
            self._flush("train")

    def learn(self) -> None:
        """Pretrain once the seed phase ends, then one update per step."""
        learn_from = self.phase_start + self.seed_steps
        if self.step == learn_from and self.seed_steps > 0:
            log.info("seed phase done: %d pretraining updates", self.seed_steps)
            for _ in range(self.seed_steps):
                self._update()
            self._flush("pretrain")
            self._sync_acting()
        elif self.step > learn_from:
            self._update()
            self._sync_acting()
            if self._count >= self.cfg.log_every:
                self._flush("train")

    def _sync_acting(self) -> None:
        """With ``overlap_update``, give acting the weights of the latest update."""
        if self._overlap is not None:
            self.agent.sync_acting()

    def _update(self) -> None:
        self._record(self.agent.update(self._batch()))

    def _batch(self) -> Batch:
        """The next update's batch; the first one after ``init_from`` also sets the
        running Q scale from the loaded networks (see :meth:`Agent.prime_running_scale`)."""
        batch = self.buffer.sample()
        if self.updates == 0 and self.cfg.init_from is not None:
            scale = self.agent.prime_running_scale(batch)
            log.info("running Q scale set from the loaded networks' values: %.2f", scale)
        return batch

    def _record(self, metrics: dict[str, float]) -> None:
        self.updates += 1
        for key, value in metrics.items():
            self._sums[key] = self._sums.get(key, 0.0) + float(value)
        self._count += 1

    def _flush(self, group: str) -> None:
        if self._count:
            means = {k: v / self._count for k, v in self._sums.items()}
            self.logger.log(group, self.step, {**means, "updates": self.updates})
        self._sums, self._count = {}, 0

    def _evaluation_envs(self) -> list[Env]:
        """One environment per evaluation worker (see ``TrainConfig.eval_workers``); the
        training environment itself when its server hosts a single simulation."""
        if self._shared_eval:
            return [self.env]
        cfg = self.cfg
        device = getattr(self.agent, "device", "cpu")
        workers = eval_workers(cfg.eval_workers, cfg.eval_episodes, device, self._eval_capacity)
        while len(self._eval_envs) < workers:
            k = len(self._eval_envs)
            seed = stream_seed(cfg.seed, 1) if k == 0 else stream_seed(cfg.seed, 1, k)
            self._eval_envs.append(self._env_factory(seed))
        return self._eval_envs

    def _evaluate_when_free(self, final: bool = False) -> bool:
        """Evaluate now, or, on a training session shared with evaluation, once the
        training episode under way has ended (``final``: the run is over, evaluate now).
        Returns whether it evaluated."""
        if self._shared_eval and self.obs is not None and not final:
            self.eval_due = True
            return False
        self.eval_due = False
        self.evaluate()
        if self._shared_eval:
            self.obs = None  # the evaluation reset the session: a new training episode
        return True

    @property
    def eval_seeds(self) -> list[int]:
        """The reset seeds of every evaluation's episodes (the same at each evaluation)."""
        return list(self._eval_seeds)

    def evaluate(self, result: dict[str, float] | None = None) -> dict[str, float]:
        """Evaluate with the planner and the policy alone; log both (``result``: an
        evaluation of the current weights run elsewhere, on the actors)."""
        if result is None:
            result = evaluate_both(self.agent, self._evaluation_envs(), self._eval_seeds)
        self.logger.log_eval(self.step, result)
        self.last_eval = result["planner_return_mean"]
        self.last_eval_result = result
        log.info(
            "step %d: eval return planner %.1f ± %.1f, policy %.1f ± %.1f",
            self.step,
            result["planner_return_mean"],
            result["planner_return_std"],
            result["policy_return_mean"],
            result["policy_return_std"],
        )
        return result

    # ----------------------------------------------------------- checkpoints
    def state(self) -> dict[str, Any]:
        """Everything needed to continue the run (weights_only-loadable)."""
        ps = self.plan_state
        return {
            "format": 1,
            "step": self.step,
            "config": to_dict(self.cfg),
            "agent": self.agent.state_dict(),
            "counters": {
                "step": self.step,
                "updates": self.updates,
                "episodes": self.episodes,
                "phase_start": self.phase_start,
                "last_eval": self.last_eval,
                "wall_time": self.logger.wall_time,
                "eval_due": self.eval_due,
                "lost_episodes": self.lost_episodes,
            },
            "rng": rng_state({"actions": self.rng}),
            "episode": None
            if self.obs is None
            else {
                "seed": self.episode_seed,
                "actions": torch.from_numpy(np.stack(self.episode_actions))
                if self.episode_actions
                else torch.zeros(0, self.spec.action_dim),
                "obs": torch.from_numpy(np.asarray(self.obs, np.float32)),
                "return": self.episode_return,
                "plan_state": dict(ps._asdict()) if isinstance(ps, PlanState) else ps,
            },
            "buffer": self.buffer.state_dict() if self.cfg.save_buffer else None,
        }

    def save(self) -> Path:
        """Write ``checkpoints/latest.pt`` (resumable) and ``step_<N>.pt`` (agent + config)."""
        self._flush("train")
        folder = checkpoint_dir(self.run_dir)
        state = self.state()
        path = save_checkpoint(folder / LATEST, state)
        light = {k: state[k] for k in ("format", "step", "config", "agent", "counters")}
        save_checkpoint(folder / f"step_{self.step:09d}.pt", light)
        if not self.cfg.save_buffer:
            log.warning(
                "checkpoint at step %d holds no replay buffer (save_buffer=false): a "
                "resume restarts collection with an empty buffer and a new seed phase",
                self.step,
            )
        log.info("checkpoint written: %s (step %d)", path, self.step)
        if self.on_save is not None:
            self.on_save(path)
        return path

    def resume(self) -> None:
        """Continue from ``checkpoints/latest.pt`` of the run folder."""
        path = latest_checkpoint(self.run_dir)
        if path is None:
            raise RunError(f"resume=true but {self.run_dir} has no checkpoints/{LATEST}")
        ckpt = load_checkpoint(path)
        c = ckpt["counters"]
        self.agent.load_state_dict(ckpt["agent"])
        self.step, self.updates, self.episodes = c["step"], c["updates"], c["episodes"]
        self.phase_start, self.last_eval = c["phase_start"], c["last_eval"]
        self.eval_due = bool(c.get("eval_due", False))
        self.lost_episodes = int(c.get("lost_episodes", 0))
        self.logger.truncate_after(self.step)
        self.logger.resume_clock(c["wall_time"])
        set_rng_state(ckpt["rng"], {"actions": self.rng})
        if ckpt["buffer"] is not None:
            self.buffer.load_state_dict(ckpt["buffer"])
            if ckpt["episode"] is not None:
                self._replay_episode(ckpt["episode"])
        else:
            log.warning(
                "checkpoint %s has no replay buffer: collection restarts with an empty "
                "buffer and a new seed phase of %d steps",
                path,
                self.seed_steps,
            )
            self.phase_start = self.step
            self.obs = None
        log.info("resumed %s at step %d (%d updates)", self.run_dir, self.step, self.updates)

    def init_weights(self, source: str | Path) -> None:
        """Start from the network weights of another run's checkpoint (see ``init_from``)."""
        path, weights, task, size, step = _source_weights(source)
        try:
            self.agent.load_model_weights(weights)
        except (RuntimeError, KeyError) as err:
            why = " ".join(str(err).split())[:400]
            raise ConfigError(
                f"init_from={source}: its networks (task {task}, model {size}) do not fit "
                f"this run's (task {self.cfg.task}, model {self.cfg.model.size}): {why}"
            ) from None
        log.info("initialised the networks from %s (task %s, step %d)", path, task, step)

    def _replay_episode(self, ep: dict[str, Any]) -> None:
        """Bring the training env back to the checkpoint's state by replaying the episode."""
        self.episode_seed = int(ep["seed"])
        obs, _ = self.env.reset(seed=self.episode_seed)
        for action in ep["actions"].numpy():
            obs, *_ = self.env.step(action)
        if not np.allclose(obs, ep["obs"].numpy(), atol=1e-5):
            log.warning(
                "replaying the current episode did not reproduce its last observation "
                "(non-deterministic env?); continuing from the replayed state"
            )
        self.obs = np.asarray(obs, np.float32)
        self.episode_actions = list(ep["actions"].numpy())
        self.episode_return = float(ep["return"])
        ps = ep["plan_state"]
        self.plan_state = PlanState(**ps) if isinstance(ps, dict) else ps


def _source_weights(source: str | Path) -> tuple[Path, dict[str, Any], Any, Any, int]:
    """Network weights to fine-tune from: a checkpoint, a run folder or a bundle folder.

    Returns (file read, model state dict, source task, model size, training step).
    A bundle is verified (checksums) before its weights are read; its target Qs (not in a
    bundle) start as the online ones.
    """
    from boom_control.bundle.load import BUNDLE_FILE, WEIGHTS, full_state, load_bundle

    root = Path(source)
    if (root / BUNDLE_FILE).is_file() or root.name == BUNDLE_FILE:
        bundle = load_bundle(root)  # verified (checksums) before its weights are read
        path = bundle.root / WEIGHTS
        weights = full_state(bundle.weights())
        return path, weights, bundle.task_id, bundle.info.model.size, bundle.info.training.step
    path = resolve_checkpoint(source)
    ckpt = load_checkpoint(path)
    theirs = upgrade_saved_config(ckpt.get("config", {}))
    size = theirs.get("model", {}).get("size")
    return path, ckpt["agent"]["model"], theirs.get("task"), size, int(ckpt.get("step", -1))


def build_trainer(cfg: TrainConfig, device: torch.device) -> Trainer:
    """A :class:`Trainer` with the real environment, agent, buffer and CSV logger."""
    from boom_control.envs import make_env

    if cfg.run_dir is None:
        cfg = dataclasses.replace(cfg, run_dir=str(cfg.default_run_dir()))

    def env_factory(seed: int) -> Env:
        return make_env(cfg.task, seed=seed, **cfg.task_options)

    def buffer_factory(spec: EnvSpec) -> ReplayBuffer:
        return ReplayBuffer(
            spec.obs_dim,
            spec.action_dim,
            cfg.buffer_capacity_or_default(),
            spec.episode_length,
            cfg.planner.horizon,
            cfg.agent.batch_size,
            device,
            seed=stream_seed(cfg.seed, 4),
        )

    logger = RunLogger(cfg.run_dir, tensorboard=cfg.log_tensorboard)
    return Trainer(
        cfg, env_factory, lambda spec: make_agent(cfg, spec, device), buffer_factory, logger
    )
