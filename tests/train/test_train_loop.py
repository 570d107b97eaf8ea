"""Trainer loop and checkpoints, driven by a tiny deterministic env and a stub agent."""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from boom_control.envs import ActionMapping, Env, EnvSpec, ObservationContract, ObsField
from boom_control.errors import ConfigError
from boom_control.planner.types import PlanState
from boom_control.train.buffer import ReplayBuffer
from boom_control.train.checkpoint import load_checkpoint, save_checkpoint
from boom_control.train.config import load_train_config
from boom_control.train.interrupt import StopSignals
from boom_control.train.logger import RunLogger
from boom_control.train.trainer import Trainer


class PointEnv(Env):
    """1-D point pushed by the action; reward -|x|; 10-step episodes."""

    def __init__(self, seed: int = 0, length: int = 10) -> None:
        contract = ObservationContract((ObsField("x", 1), ObsField("t", 1)))
        super().__init__(
            EnvSpec(
                "fake:point", 2, 1, 0.02, length, contract, ActionMapping((1.0,), (0.0,)), 0.02, 1
            )
        )
        self._rng = np.random.default_rng(seed)

    def _reset(self, seed):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.x = float(self._rng.uniform(-1, 1))
        return self._obs(), {}

    def _obs(self):
        return np.array([self.x, self.elapsed_steps / self.spec.episode_length], np.float32)

    def _step(self, a):
        self.x += 0.1 * float(a[0]) + 0.01 * float(self._rng.normal())
        return self._obs(), -abs(self.x), False, {}


class StubAgent:
    """Linear policy + reward regressor; records what the trainer asks of it."""

    device = torch.device("cpu")

    def __init__(self, spec: EnvSpec) -> None:
        self.net = torch.nn.Linear(spec.obs_dim, spec.action_dim)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.01)
        self.acts: list[tuple[bool, bool]] = []
        self.closed = False
        self.batches: list[torch.Tensor] = []

    def initial_plan_state(self):
        return PlanState(torch.zeros(3, 1), torch.tensor(False))

    def act(self, obs, ps, eval_mode, use_planner=True, generator=None):
        self.acts.append((eval_mode, use_planner))
        with torch.no_grad():
            mu = torch.tanh(self.net(torch.as_tensor(obs)))
            a = mu if eval_mode else (mu + 0.3 * torch.randn_like(mu)).clamp(-1, 1)
        ps = PlanState(ps.mean + 1, torch.tensor(True))
        return a.numpy(), mu.numpy(), np.full(1, 0.3, np.float32), ps

    def update(self, batch):
        self.batches.append(batch.obs.clone())
        loss = (self.net(batch.obs[0])[:, 0] - batch.reward[0]).pow(2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss": loss.item(), "noise": torch.rand(()).item()}

    def close(self):
        self.closed = True  # the trainer is done with it

    def state_dict(self):
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, d):
        self.net.load_state_dict(d["net"])
        self.opt.load_state_dict(d["opt"])


def make_trainer(run_dir: Path, *overrides: str) -> Trainer:
    cfg = load_train_config(
        [
            f"run_dir={run_dir}",
            "steps=50",
            "seed_steps=20",
            "eval_freq=25",
            "eval_episodes=2",
            "checkpoint_every=25",
            "log_every=1",
            "log_tensorboard=false",
            "agent.batch_size=8",
            *overrides,
        ]
    )

    def buffer_factory(spec):
        return ReplayBuffer(
            spec.obs_dim,
            spec.action_dim,
            1000,
            spec.episode_length,
            cfg.planner.horizon,
            cfg.agent.batch_size,
            "cpu",
            seed=5,
        )

    return Trainer(
        cfg,
        lambda seed: PointEnv(seed),
        StubAgent,
        buffer_factory,
        RunLogger(run_dir, tensorboard=False),
    )


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_seed_phase_pretraining_and_updates(tmp_path):
    tr = make_trainer(tmp_path)
    tr.run()
    agent, buf = tr.agent, tr.buffer
    assert tr.step == 50 and tr.updates == 20 + 30 and len(agent.batches) == 50
    # every pretraining update drew its own batch
    firsts = {tuple(b[0, :, 0].tolist()) for b in agent.batches[:20]}
    assert len(firsts) == 20
    # seed phase (episodes 0 and 1, rows 0..21): random actions stored with mu = a, std 0,
    # no planner call in training mode; afterwards the agent's mu and std are stored
    seed_rows = [i for i in range(22) if i not in (10, 21)]
    assert np.array_equal(buf.mu[seed_rows], buf.action[seed_rows])
    assert np.all(buf.std[seed_rows] == 0) and np.all(buf.std[22:32] == 0.3)
    assert sum(not eval_mode for eval_mode, _ in agent.acts) == 30
    assert buf.transitions == 50 and buf.episodes == 5
    # evaluation at 0, 25, 50: planner and policy episodes in eval mode
    ev = rows(tmp_path / "eval.csv")
    assert [int(r["step"]) for r in ev] == [0, 25, 50]
    assert all(r["episodes"] == "2" for r in ev)
    assert agent.acts.count((True, True)) == agent.acts.count((True, False)) == 3 * 2 * 10
    log = rows(tmp_path / "log.csv")
    groups = {r["group"] for r in log}
    assert {"pretrain", "train", "episode", "eval"} <= groups
    assert sum(r["group"] == "train" and r["name"] == "loss" for r in log) == 30
    assert (tmp_path / "config.yaml").is_file() and (tmp_path / "curve.png").is_file()


def test_checkpoint_weights_only_and_contents(tmp_path):
    tr = make_trainer(tmp_path)
    tr.run()
    ck = tmp_path / "checkpoints"
    names = sorted(p.name for p in ck.iterdir())
    assert names == ["latest.pt", "step_000000025.pt", "step_000000050.pt"]
    state = torch.load(ck / "latest.pt", weights_only=True)
    assert state["step"] == 50 and state["counters"]["updates"] == 50
    assert state["config"]["steps"] == 50 and isinstance(state["config"]["model"], dict)
    assert state["buffer"]["obs"].shape == (55, 2)
    assert set(state["rng"]) >= {"python", "numpy", "torch", "generators"}
    light = load_checkpoint(ck / "step_000000025.pt")
    assert light["step"] == 25 and "buffer" not in light


def test_atomic_write_keeps_old_checkpoint(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"w": torch.ones(3)})

    class Boom:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(path, {"w": torch.zeros(3), "bad": Boom()})
    assert torch.equal(load_checkpoint(path)["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp file left behind


def test_resume_matches_uninterrupted_run(tmp_path):
    a = make_trainer(tmp_path / "a", "steps=44", "checkpoint_every=33")
    a.run()
    b = make_trainer(tmp_path / "b", "steps=33", "checkpoint_every=33")
    b.run()
    b.logger.close()
    c = make_trainer(tmp_path / "b", "steps=44", "checkpoint_every=33", "resume=true")
    c.run()
    for x, y in zip(a.agent.batches[-11:], c.agent.batches, strict=True):
        assert torch.equal(x, y)
    assert torch.equal(a.agent.net.weight, c.agent.net.weight)
    la = [r for r in rows(tmp_path / "a" / "log.csv") if int(r["step"]) > 33]
    lc = [r for r in rows(tmp_path / "b" / "log.csv") if int(r["step"]) > 33]
    strip = [{k: v for k, v in r.items() if k != "wall_time"} for r in la]
    assert strip and strip == [{k: v for k, v in r.items() if k != "wall_time"} for r in lc]


def test_resume_without_buffer_restarts_seed_phase(tmp_path, caplog):
    b = make_trainer(tmp_path, "steps=30", "save_buffer=false")
    with caplog.at_level(logging.WARNING):
        b.run()
    assert "no replay buffer" in caplog.text and "empty buffer" in caplog.text
    assert load_checkpoint(tmp_path / "checkpoints" / "latest.pt")["buffer"] is None
    b.logger.close()
    c = make_trainer(tmp_path, "steps=50", "save_buffer=false", "resume=true")
    c.run()
    # 20 fresh seed steps (no training acts), then pretraining (20) and 10 updates
    assert c.updates == 30 + 20 and [a for a in c.agent.acts if not a[0]] == []
    assert c.buffer.transitions == 20


def test_time_limit_stops_with_a_checkpoint_and_resume_finishes_the_run(tmp_path):
    full = make_trainer(tmp_path / "full", "steps=44", "checkpoint_every=1000")
    assert full.run() is True
    part = make_trainer(tmp_path / "cut", "steps=44", "checkpoint_every=1000")
    part.cfg = dataclasses.replace(part.cfg, time_limit_minutes=1e-9)  # stops after step 1
    assert part.run() is False
    part.logger.close()
    assert 0 < part.step < 44
    saved = load_checkpoint(tmp_path / "cut" / "checkpoints" / "latest.pt")
    assert saved["step"] == part.step
    # the saved config keeps the limit; lift it for the rest of the run
    rest = make_trainer(
        tmp_path / "cut",
        "steps=44",
        "checkpoint_every=1000",
        "resume=true",
        "time_limit_minutes=null",
    )
    assert rest.run() is True and rest.step == 44
    assert torch.equal(full.agent.net.weight, rest.agent.net.weight)
    with pytest.raises(ConfigError, match="time_limit_minutes"):
        make_trainer(tmp_path / "bad", "time_limit_minutes=0")


def test_first_ctrl_c_stops_with_a_checkpoint_and_resume_finishes_the_run(tmp_path):
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN where the suite runs in the background
    full = make_trainer(tmp_path / "full", "steps=44", "checkpoint_every=1000")
    assert full.run() is True and full.stopped_by is None
    part = make_trainer(tmp_path / "cut", "steps=44", "checkpoint_every=1000")
    step_and_learn = part.step_and_learn

    def interrupted_at_step_30():
        step_and_learn()
        if part.step == 30:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C in the terminal sends

    part.step_and_learn = interrupted_at_step_30
    assert part.run() is False and part.stopped_by == "SIGINT" and part.step == 30
    part.logger.close()
    assert load_checkpoint(tmp_path / "cut" / "checkpoints" / "latest.pt")["step"] == 30
    assert signal.getsignal(signal.SIGINT) is before  # the handler is restored
    rest = make_trainer(tmp_path / "cut", "steps=44", "checkpoint_every=1000", "resume=true")
    assert rest.run() is True and rest.step == 44
    assert torch.equal(full.agent.net.weight, rest.agent.net.weight)


def test_ctrl_c_during_the_first_evaluation_stops_with_a_checkpoint(tmp_path):
    part = make_trainer(tmp_path / "cut", "steps=44", "checkpoint_every=1000")
    evaluate = part.evaluate

    def interrupted_evaluation():
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the step-0 evaluation runs
        return evaluate()

    part.evaluate = interrupted_evaluation
    assert part.run() is False and part.stopped_by == "SIGINT" and part.step == 0
    part.logger.close()
    assert load_checkpoint(tmp_path / "cut" / "checkpoints" / "latest.pt")["step"] == 0
    assert (tmp_path / "cut" / "eval.csv").read_text().count("\n") == 2  # header + step 0
    rest = make_trainer(tmp_path / "cut", "steps=44", "checkpoint_every=1000", "resume=true")
    assert rest.run() is True and rest.step == 44


def test_a_second_signal_aborts_at_once():
    with StopSignals((signal.SIGTERM,)) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested == "SIGTERM"
        with pytest.raises(KeyboardInterrupt, match="second SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_progress_lines_without_a_terminal(tmp_path, caplog):
    """Without a terminal (pytest captures stderr) the bar is off and progress is logged."""
    tr = make_trainer(tmp_path, "log_every=10")
    with caplog.at_level(logging.INFO, logger="boom_control.train.trainer"):
        tr.run()
    lines = [r.getMessage() for r in caplog.records if "steps/s" in r.getMessage()]
    assert [line.split()[1] for line in lines] == ["10/50", "20/50", "30/50", "40/50", "50/50"]
    assert "last eval return" in lines[-1] and "nan" not in lines[-1]


def test_eval_workers_get_their_own_envs_and_close_closes_them(tmp_path):
    closed = []

    class ClosingEnv(PointEnv):
        def close(self):
            closed.append(self)

    made = []

    def factory(seed):
        made.append(ClosingEnv(seed))
        return made[-1]

    base = make_trainer(tmp_path, "eval_workers=2", "steps=25")
    with Trainer(base.cfg, factory, StubAgent, base._buffer_factory, base.logger) as tr:
        tr.run()
        assert len(made) == 3  # training env + two evaluation envs
    assert sorted(map(id, closed)) == sorted(map(id, made))
    assert tr.agent.closed  # the planner's threads stopped too
