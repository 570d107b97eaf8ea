"""Distributed BOOM training on Ray: many acting actors, one learner (``actors=N``).

Each :class:`ActorWorker` is a Ray actor with its own environment (a local task or a
``zmq:`` endpoint), its own seeded generators and an acting copy of the agent on the CPU
that plans with MPPI. It steps its environment in *chunks* of ``chunk_steps`` agent steps
(fewer when its episode ends) and returns each chunk to the learner.

The learner is this process (:func:`run_distributed`, on the run's device, a GPU when one
is given): it owns the replay buffer and stores each chunk as it arrives (with the
observation before its first step, so the buffer's windows of the horizon lie inside one
chunk and never mix two actors), runs the updates (the seed phase's pretraining, then
``utd`` updates per collected step) and publishes the weights through Ray's object store every
``weights_every`` updates; an actor takes the newest weights with its next chunk.
An actor is asked for its next chunk as soon as its last one arrives, so it collects
while the learner updates on what it sent; it is never more than one chunk ahead, which
throttles collection when the updates fall behind.

Evaluations and checkpoints are the trainer's own, at the same step counts as a
single-process run; with ``eval_on_actors`` (the default) the evaluation episodes run on
the actors, split over them, each on an evaluation environment of its own with the
learner's current weights (the returns equal the learner's own evaluation: an episode
depends only on the weights and its seed); if an actor cannot, the learner evaluates.
An actor that dies is restarted by Ray; the episode it was in is dropped (counted in
``lost_chunks``, logged) and training goes on. What is not deterministic: the order in
which chunks arrive, hence which data each update sees.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from boom_control.config import to_dict
from boom_control.errors import ConfigError

log = logging.getLogger(__name__)

RAY_HINT = "pip install 'boom-control[ray]' (Ray, the distributed engine)"


def require_ray(what: str = "actors > 0 trains"):
    """The ``ray`` module, or a :class:`ConfigError` saying ``what`` needs it and naming the
    extra to install."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"{what} on Ray, which is not installed: {RAY_HINT}") from None
    return ray


def start_ray(ray, address: str | None, num_cpus: int | None) -> bool:
    """Join the cluster at ``address`` (or ``RAY_ADDRESS``), else start a local Ray with
    ``num_cpus`` (dashboard off, workers' output kept out of this terminal), unless Ray
    is already up. Ray installs its own SIGINT / SIGTERM handlers; this process's are put
    back, so a Ctrl-C or SIGTERM still stops a run with a checkpoint. Returns whether Ray
    was started here (and is to be shut down by the caller)."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": logging.WARNING,
        "log_to_driver": False,
    }
    if address is None:
        kwargs["num_cpus"] = num_cpus
    main = threading.current_thread() is threading.main_thread()
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:
        ray.init(address=address, **kwargs)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    return True


def stop_ray(ray) -> None:
    """Shut Ray down, keeping this process's signal handlers."""
    main = threading.current_thread() is threading.main_thread()
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:
        ray.shutdown()
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


class ActorWorker:
    """One acting process (wrapped by ``ray.remote``).

    Args:
        config: the run's :class:`TrainConfig` as a dict.
        index: this actor's number (its seeds derive from the run's seed and it).
    """

    def __init__(self, config: dict[str, Any], index: int) -> None:
        from boom_control.envs import make_env
        from boom_control.train.agent import make_agent
        from boom_control.train.checkpoint import stream_seed
        from boom_control.train.config import train_config_from_saved

        torch.set_num_threads(1)
        cfg = self.cfg = train_config_from_saved(config)
        self.index = index
        seed = stream_seed(cfg.seed, 5, index)
        torch.manual_seed(seed)
        self.env = make_env(cfg.task, seed=seed, **cfg.task_options)
        self.agent = make_agent(cfg, self.env.spec, torch.device("cpu"))
        self.generator = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self._episode_seeds = np.random.default_rng(stream_seed(cfg.seed, 6, index))
        self.version = -1
        self.obs: np.ndarray | None = None
        self.plan_state: Any = None
        self.eval_env: Any = None

    def _take(self, version: int, weights: dict | None) -> None:
        """Act with the learner's weights of ``version`` (``weights``: None = kept)."""
        if weights is not None and version != self.version:
            self.agent.load_model_weights(weights)
            self.version = version

    def ping(self) -> int:
        """This actor's process id (it is up)."""
        return os.getpid()

    def collect(self, version: int, weights: dict | None, random: bool, steps: int) -> dict:
        """Up to ``steps`` agent steps of the current episode (a new one when none runs).

        Args:
            version: the learner's weights version; ``weights`` its state dict when this
                actor does not have it yet (None: keep the current ones).
            random: uniform random actions (the seed phase) instead of the planner's.
        Returns:
            the chunk: ``start`` (the episode's first observation when it begins here),
            ``obs (T, O)`` the observations after each step, ``action``, ``mu``, ``std``
            ``(T, A)``, ``reward``, ``terminated`` ``(T,)``, ``done``, ``version``.
        """
        self._take(version, weights)
        start = None
        if self.obs is None:
            seed = int(self._episode_seeds.integers(2**31))
            self.obs, _ = self.env.reset(seed=seed)
            self.plan_state = self.agent.initial_plan_state()
            start = np.asarray(self.obs, np.float32)
        out: dict[str, list] = {k: [] for k in ("obs", "action", "mu", "std", "reward", "term")}
        done = False
        for _ in range(steps):
            if random:
                action = self.rng.uniform(-1.0, 1.0, self.env.spec.action_dim).astype(np.float32)
                mu, std = action, np.zeros_like(action)
            else:
                action, mu, std, self.plan_state = self.agent.act(
                    self.obs, self.plan_state, eval_mode=False, generator=self.generator
                )
            obs, reward, terminated, truncated, _ = self.env.step(action)
            for key, value in (("obs", obs), ("action", action), ("mu", mu), ("std", std)):
                out[key].append(np.asarray(value, np.float32))
            out["reward"].append(float(reward))
            out["term"].append(bool(terminated))
            self.obs = np.asarray(obs, np.float32)
            if terminated or truncated:
                done, self.obs = True, None
                break
        return {
            "actor": self.index,
            "version": self.version,
            "start": start,
            "obs": np.stack(out["obs"]),
            "action": np.stack(out["action"]),
            "mu": np.stack(out["mu"]),
            "std": np.stack(out["std"]),
            "reward": np.asarray(out["reward"], np.float32),
            "terminated": np.asarray(out["term"], bool),
            "done": done,
        }

    def evaluate(
        self, version: int, weights: dict | None, seeds: list[int], use_planner: bool
    ) -> list[tuple[float, int]]:
        """Return and length of one evaluation episode per reset seed (see
        :func:`~boom_control.train.evaluate.run_episode`), on an environment of its own
        (the training episode in progress is left as it is), with the weights of
        ``version``."""
        from boom_control.envs import make_env
        from boom_control.train.checkpoint import stream_seed
        from boom_control.train.evaluate import episode_stats

        self._take(version, weights)
        if self.eval_env is None:
            seed = stream_seed(self.cfg.seed, 7, self.index)
            self.eval_env = make_env(self.cfg.task, seed=seed, **self.cfg.task_options)
        returns, lengths = episode_stats(self.agent, self.eval_env, seeds, use_planner)
        return [(float(r), int(n)) for r, n in zip(returns, lengths, strict=True)]


@dataclass
class DistributedStats:
    """What the distributed collection did (logged as ``distributed`` metrics)."""

    chunks: int = 0
    lost_chunks: int = 0
    weights_version: int = 0
    versions_seen: list[int] = field(default_factory=list)
    """The weights version each chunk was collected with, in arrival order."""


class Collector:
    """The actors of a run and the learner's side of their chunks.

    Args:
        trainer: the run's :class:`~boom_control.train.trainer.Trainer` (its buffer,
            agent and counters are used).
        address: Ray cluster to join (None: ``RAY_ADDRESS`` or a local instance).
    """

    def __init__(self, trainer, address: str | None = None) -> None:
        ray = self.ray = require_ray()
        cfg = trainer.cfg
        self.trainer, self.cfg = trainer, cfg
        self._started_ray = start_ray(ray, address, max(os.cpu_count() or 1, cfg.actors))
        remote = ray.remote(ActorWorker).options(num_cpus=1, max_restarts=-1, max_task_retries=0)
        config = to_dict(cfg)
        self.actors = [remote.remote(config, i) for i in range(cfg.actors)]
        self._known = [-1] * cfg.actors  # weights version each actor has
        self._last_obs: list[np.ndarray | None] = [None] * cfg.actors  # before its next step
        self._episode: list[tuple[float, int]] = [(0.0, 0)] * cfg.actors  # return, length
        self._pending: dict[Any, int] = {}
        self.stats = DistributedStats()
        self._weights_ref = None
        self._published_at = -1  # the learner's update count at the last publication
        self.publish()

    # ---------------------------------------------------------------- weights
    def publish(self) -> None:
        """Put the learner's current weights in the object store as the next version."""
        agent = self.trainer.agent
        state = {k: v.detach().to("cpu", copy=True) for k, v in agent.model.state_dict().items()}
        self._weights_ref = self.ray.put(state)
        self.stats.weights_version += 1
        self._published_at = self.trainer.updates

    def _weights_for(self, actor: int) -> tuple[int, Any]:
        """The newest version and its weights if ``actor`` lacks them (else None); the
        actor has them once the call they go with has run."""
        version = self.stats.weights_version
        weights = self._weights_ref if self._known[actor] != version else None
        self._known[actor] = version
        return version, weights

    def request(self, actor: int) -> None:
        """Ask ``actor`` for its next chunk, with the newest weights if it lacks them."""
        random = self.trainer.step < self.trainer.phase_start + self.trainer.seed_steps
        version, weights = self._weights_for(actor)
        ref = self.actors[actor].collect.remote(version, weights, random, self.cfg.chunk_steps)
        self._pending[ref] = actor

    @property
    def in_flight(self) -> list[int]:
        """Actors collecting a chunk right now."""
        return sorted(self._pending.values())

    def start(self) -> None:
        for actor in range(len(self.actors)):
            self.request(actor)

    # ---------------------------------------------------------------- chunks
    def next_chunk(self, timeout: float | None = None) -> tuple[int, dict | None]:
        """The next chunk to arrive (its actor and the chunk; None when the actor died:
        its episode is dropped and the restarted actor starts a new one)."""
        ray = self.ray
        ready, _ = ray.wait(list(self._pending), num_returns=1, timeout=timeout)
        if not ready:
            return -1, None
        actor = self._pending.pop(ready[0])
        try:
            chunk = ray.get(ready[0])
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as err:
            self.stats.lost_chunks += 1
            self._last_obs[actor] = None  # the rest of its episode is lost with it
            self._known[actor] = -1  # a restarted actor has none of the weights
            log.warning(
                "actor %d died (%s); its episode is dropped (%d lost chunks), Ray restarts it",
                actor,
                type(err).__name__,
                self.stats.lost_chunks,
            )
            return actor, None
        self.stats.chunks += 1
        self.stats.versions_seen.append(int(chunk["version"]))
        return actor, chunk

    def store(self, actor: int, chunk: dict) -> tuple[int, list[tuple[float, int]]]:
        """Store ``chunk`` in the replay buffer, after the observation its first step was
        taken from. Returns the chunk's steps and ``(return, length)`` of the episode it
        ended, if any. A chunk whose episode began in a chunk that was lost (an actor
        restart) is counted but not stored."""
        steps = len(chunk["action"])
        if chunk["start"] is not None:
            prev, self._episode[actor] = chunk["start"], (0.0, 0)
        else:
            prev = self._last_obs[actor]
            if prev is None:
                return steps, []
        obs = np.concatenate([prev[None], chunk["obs"]])
        self.trainer.buffer.add_episode(
            obs, chunk["action"], chunk["mu"], chunk["std"], chunk["reward"], chunk["terminated"]
        )
        ret, length = self._episode[actor]
        ret, length = ret + float(chunk["reward"].sum()), length + steps
        self._episode[actor] = (ret, length)
        self._last_obs[actor] = None if chunk["done"] else chunk["obs"][-1]
        return steps, [(ret, length)] if chunk["done"] else []

    # ---------------------------------------------------------------- evaluation
    def evaluate(self, seeds: list[int]) -> dict[str, float] | None:
        """The trainer's evaluation (planner and policy alone, one episode per seed) run on
        the actors with the learner's current weights: actor ``k`` runs seeds ``k, k + n,
        ...``. Each actor first finishes the chunk it is collecting. Returns None (the
        learner then evaluates itself) when an actor dies or fails meanwhile."""
        from boom_control.train.evaluate import summarize_eval

        if self._published_at != self.trainer.updates:
            self.publish()  # evaluate the weights the learner has now
        n = min(len(self.actors), len(seeds))
        calls = {}
        for use_planner in (True, False):
            for k in range(n):
                version, weights = self._weights_for(k)
                ref = self.actors[k].evaluate.remote(version, weights, seeds[k::n], use_planner)
                calls[ref] = (use_planner, k)
        returns = {True: np.empty(len(seeds)), False: np.empty(len(seeds))}
        failed = None
        for ref, (use_planner, k) in calls.items():
            try:
                part = self.ray.get(ref)
            except Exception as err:  # any failure: the learner evaluates
                failed = failed or f"actor {k}: {type(err).__name__}: {err}".splitlines()[0]
                self._known[k] = -1  # a restarted actor has none of the weights
                continue
            returns[use_planner][k::n] = [r for r, _ in part]
        if failed is not None:
            log.warning("evaluation on the actors failed (%s); evaluating here instead", failed)
            return None
        return summarize_eval(returns[True], returns[False])

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        if self._started_ray:
            stop_ray(self.ray)


def run_distributed(trainer, stop_at: float | None, signals, bar=None, on_chunk=None) -> None:
    """The learner's loop of a run with ``actors > 0`` (see the module docstring); returns
    when ``trainer.cfg.steps`` are collected or a stop is asked for (``signals``,
    ``stop_at``), with the trainer's evaluations and checkpoints on the way. ``on_chunk``
    (monitoring) is called with the collector and the actor after each chunk is stored and
    that actor asked for its next one."""
    cfg = trainer.cfg
    collector = Collector(trainer)
    log.info(
        "distributed collection: %d actors, chunks of %d steps, weights every %d updates, "
        "%.3g updates per step",
        cfg.actors,
        cfg.chunk_steps,
        cfg.weights_every,
        cfg.utd,
    )
    pretrained = trainer.step > trainer.phase_start + trainer.seed_steps
    collected_since_learning = 0.0
    try:
        collector.start()
        while trainer.step < cfg.steps and trainer.stopped_by is None:
            actor, chunk = collector.next_chunk()
            if chunk is None:  # the actor died: ask its restarted self
                collector.request(actor)
                continue
            steps, ended = collector.store(actor, chunk)
            before = trainer.step
            trainer.step = min(cfg.steps, trainer.step + steps)
            if trainer.step < cfg.steps:
                collector.request(actor)  # it collects while this process learns
            if on_chunk is not None:
                on_chunk(collector, actor)
            for ret, length in ended:
                trainer.episodes += 1
                trainer.logger.log(
                    "episode",
                    trainer.step,
                    {"return": ret, "length": length, "episodes": trainer.episodes},
                )
            if bar is not None:
                bar.update(trainer.step - before)
            learn_from = trainer.phase_start + trainer.seed_steps
            if not pretrained and trainer.step >= learn_from and trainer.buffer.size > 0:
                pretrained = _pretrain(trainer, collector)
            elif pretrained:
                collected_since_learning += cfg.utd * steps
                while collected_since_learning >= 1.0:
                    trainer._update()
                    collected_since_learning -= 1.0
                    if trainer.updates % cfg.weights_every == 0:
                        collector.publish()
                if trainer._count >= cfg.log_every:
                    trainer._flush("train")
            _eval_and_save(trainer, before, stop_at, signals, collector)
    finally:
        trainer.logger.log(
            "distributed",
            trainer.step,
            {
                "chunks": collector.stats.chunks,
                "lost_chunks": collector.stats.lost_chunks,
                "weights_version": collector.stats.weights_version,
            },
        )
        trainer.distributed_stats = collector.stats
        collector.close()


def _pretrain(trainer, collector: Collector) -> bool:
    """The seed phase's pretraining (as many updates as seed steps), once enough whole
    episodes are stored to sample from; returns whether it ran."""
    try:
        trainer.buffer.sample_indices()
    except (RuntimeError, ValueError):  # no window of the horizon stored yet
        return False
    log.info("seed phase done: %d pretraining updates", trainer.seed_steps)
    for _ in range(trainer.seed_steps):
        trainer._update()
    trainer._flush("pretrain")
    collector.publish()
    return True


def _eval_and_save(trainer, before: int, stop_at: float | None, signals, collector) -> None:
    """Evaluate and checkpoint at the step counts a single-process run would, and stop on
    a signal or the time limit (with a checkpoint)."""
    cfg = trainer.cfg
    crossed = lambda every: trainer.step // every > before // every  # noqa: E731
    if crossed(cfg.eval_freq) or trainer.step >= cfg.steps:
        seeds = trainer.eval_seeds
        trainer.evaluate(collector.evaluate(seeds) if cfg.eval_on_actors and seeds else None)
    late = stop_at is not None and time.monotonic() > stop_at
    stop = signals.requested or ("time_limit_minutes" if late else None)
    if stop or crossed(cfg.checkpoint_every) or trainer.step >= cfg.steps:
        trainer.save()
    if stop and trainer.step < cfg.steps:
        trainer.stopped_by = stop
        log.info(
            "stopped by %s at step %d of %d; continue with: boom train run_dir=%s resume=true",
            stop,
            trainer.step,
            cfg.steps,
            trainer.run_dir,
        )
