"""Resuming a real BOOM run continues with exactly the updates of an uninterrupted run."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from boom_control.bundle.load import load_bundle
from boom_control.device import resolve_device
from boom_control.errors import BundleError, ConfigError, RunError
from boom_control.train.checkpoint import load_checkpoint
from boom_control.train.config import load_train_config
from boom_control.train.trainer import build_trainer
from export.exporter import export_run

pytest.importorskip("dm_control")

TINY = [
    "task=dmc:cartpole-swingup",
    "task_options={episode_length: 50}",
    "device=cpu",
    "model.enc_dim=64",
    "model.mlp_dim=64",
    "model.latent_dim=32",
    "model.num_q=2",
    "planner.num_samples=32",
    "planner.num_elites=8",
    "planner.num_pi_trajs=4",
    "planner.iterations=2",
    "agent.batch_size=32",
    "seed_steps=60",
    "eval_freq=50",
    "eval_episodes=1",
    "eval_at_start=false",
    "log_every=1",
    "log_tensorboard=false",
    "seed=7",
]


def run(run_dir: Path, *overrides: str):
    cfg = load_train_config([*TINY, f"run_dir={run_dir}", *overrides])
    with build_trainer(cfg, resolve_device("cpu")) as trainer:
        trainer.run()
    return trainer


def logged(run_dir: Path, after: int) -> list[tuple[str, ...]]:
    with (run_dir / "log.csv").open(newline="") as f:
        return [
            (r["step"], r["group"], r["name"], r["value"])
            for r in csv.DictReader(f)
            if int(r["step"]) > after
        ]


@pytest.mark.parametrize(
    "mode",
    [
        ("overlap_update=false",),
        ("overlap_update=true",),
        ("overlap_update=true", "planner.threads=2"),
    ],
    ids=["sequential", "overlap_update", "overlap_update+planner_threads"],
)
def test_resume_is_exact(tmp_path, mode):
    torch.set_num_threads(1)
    # uninterrupted: 100 steps, checkpoint at 75 (mid-episode: episodes are 50 steps)
    full = run(tmp_path / "full", "steps=100", "checkpoint_every=75", *mode)
    # interrupted at 75, then resumed to 100
    run(tmp_path / "cut", "steps=75", "checkpoint_every=75", *mode)
    resumed = run(tmp_path / "cut", "steps=100", "checkpoint_every=75", "resume=true", *mode)

    assert resumed.step == full.step == 100 and resumed.updates == full.updates == 100
    # every logged metric after the checkpoint: train losses of each update, episode
    # returns and the step-100 evaluation
    after_full, after_resumed = logged(tmp_path / "full", 75), logged(tmp_path / "cut", 75)
    assert any(g == "train" for _, g, _, _ in after_full)
    assert any(g == "eval" for _, g, _, _ in after_full)
    assert after_resumed == after_full
    # and the final weights, optimiser moments and running scale
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "latest.pt")["agent"]
    b = load_checkpoint(tmp_path / "cut" / "checkpoints" / "latest.pt")["agent"]
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert torch.equal(a["running_scale"], b["running_scale"])
    sa, sb = a["optim"]["state"], b["optim"]["state"]
    assert all(torch.equal(sa[k]["exp_avg"], sb[k]["exp_avg"]) for k in sa)
    if "overlap_update=true" in mode:
        # acting has its own generator and a weight copy, synced after each update
        assert torch.equal(a["act_rng"], b["act_rng"])
        agent = resumed.agent
        assert agent.act_model is not agent.model
        acting = agent.act_model.state_dict()
        assert all(torch.equal(v, acting[k]) for k, v in agent.model.state_dict().items())
    else:
        assert "act_rng" not in a


def test_overlapped_updates_differ_from_sequential_only_by_the_batch_timing(tmp_path):
    """Same seed, same seed phase and pretraining; the regular updates then differ.

    (No evaluation inside the seed phase: with overlap_update acting draws from its own
    generator, so an evaluation there would leave torch's global RNG elsewhere.)
    """
    torch.set_num_threads(1)
    common = ("steps=70", "checkpoint_every=70", "eval_freq=1000")
    seq = run(tmp_path / "seq", *common)
    ovl = run(tmp_path / "ovl", *common, "overlap_update=true")
    assert seq.updates == ovl.updates == 70
    pre_seq = [r for r in logged(tmp_path / "seq", 0) if r[1] == "pretrain"]
    pre_ovl = [r for r in logged(tmp_path / "ovl", 0) if r[1] == "pretrain"]
    assert pre_seq and pre_seq == pre_ovl
    train_seq = [r for r in logged(tmp_path / "seq", 0) if r[1] == "train"]
    train_ovl = [r for r in logged(tmp_path / "ovl", 0) if r[1] == "train"]
    assert len(train_seq) == len(train_ovl) > 0 and train_seq != train_ovl


def test_init_from_starts_a_new_task_from_another_runs_weights(tmp_path):
    """Fine-tuning: the networks come from the source run, nothing else does."""
    torch.set_num_threads(1)
    run(tmp_path / "source", "steps=70", "checkpoint_every=70", "eval_freq=1000")
    source = load_checkpoint(tmp_path / "source" / "checkpoints" / "latest.pt")["agent"]
    for overlap in ("false", "true"):
        tuned = run(
            tmp_path / f"tuned-{overlap}",
            "task=dmc:cartpole-balance",
            f"init_from={tmp_path / 'source'}",
            f"overlap_update={overlap}",
            "steps=0",
        )
        agent = tuned.agent
        for model in (agent.model, agent.act_model):  # the acting copy follows
            mine = model.state_dict()
            assert mine.keys() == source["model"].keys()
            assert all(torch.equal(v, mine[k]) for k, v in source["model"].items())
        assert agent.optim.state_dict()["state"] == {}  # fresh optimiser
        assert tuned.step == 0 and tuned.updates == 0
    # a later resume of the fine-tuning run continues from its own checkpoint
    saved = (tmp_path / "tuned-false" / "config.yaml").read_text()
    assert "init_from:" in saved and "source" in saved


def test_init_from_sets_the_q_scale_from_the_loaded_networks_once(tmp_path, caplog):
    """The first update of a fine-tuning run (here the pretraining after the seed phase)
    sets the running Q scale from the loaded Q; a run from scratch keeps S = 1 to start."""
    torch.set_num_threads(1)
    primed = "running Q scale set from the loaded networks"
    with caplog.at_level("INFO", logger="boom_control.train.trainer"):
        run(tmp_path / "source", "steps=62", "checkpoint_every=62")
    assert primed not in caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="boom_control.train.trainer"):
        tuned = run(tmp_path / "tuned", f"init_from={tmp_path / 'source'}", "steps=62")
    assert caplog.text.count(primed) == 1 and tuned.updates == 62
    pretrain = [r for r in logged(tmp_path / "tuned", 0) if r[1:3] == ("pretrain", "q_scale")]
    assert pretrain and float(pretrain[0][3]) >= 1.0
    # stopped inside its seed phase, the fine-tuning run primes the scale on resume
    caplog.clear()
    with caplog.at_level("INFO", logger="boom_control.train.trainer"):
        run(tmp_path / "early", f"init_from={tmp_path / 'source'}", "steps=30")
        run(tmp_path / "early", "resume=true", "steps=62")
    assert caplog.text.count(primed) == 1


def test_init_from_with_other_network_sizes_is_a_clear_error(tmp_path):
    torch.set_num_threads(1)
    run(tmp_path / "source", "steps=1")
    with pytest.raises(ConfigError, match=r"init_from=.*do not fit.*size mismatch"):
        run(tmp_path / "other", f"init_from={tmp_path / 'source'}", "model.mlp_dim=32", "steps=0")
    with pytest.raises(RunError, match="no checkpoint"):
        run(tmp_path / "none", f"init_from={tmp_path / 'missing'}", "steps=0")


def test_init_from_a_bundle_takes_its_verified_weights(tmp_path, tiny_bundle):
    """A bundle folder is a source too: its weights file, after the checksum check (the
    target Qs, which a bundle does not hold, start as the online ones)."""
    torch.set_num_threads(1)
    smoke = load_train_config(
        [
            "task=h1:stand",
            "task_options.episode_length=100",
            "device=cpu",
            f"init_from={tiny_bundle}",
            "steps=1",  # one seed-phase step, no update: a checkpoint of the bundle's weights
            "seed_steps=10",
            "eval_at_start=false",
            "log_tensorboard=false",
            f"run_dir={tmp_path / 'tuned'}",
        ],
        presets=("train", "train_smoke"),
    )
    with build_trainer(smoke, resolve_device("cpu")) as trainer:
        trainer.run()
    weights = load_bundle(tiny_bundle).weights()
    mine = trainer.agent.model.state_dict()
    assert {k for k in mine if not k.startswith("_target_Qs.")} == weights.keys()
    assert all(torch.equal(v, mine[k]) for k, v in weights.items())
    assert all(
        torch.equal(mine[k], mine[k.replace("_target_Qs.", "_Qs.")])
        for k in mine
        if k.startswith("_target_Qs.")
    )
    # its export names where the networks came from
    exported = export_run(tmp_path / "tuned", tmp_path / "re-exported")
    assert exported.meta["training"]["init_from"] == str(tiny_bundle)
    assert exported.meta["training"]["eval_return"] is None  # never evaluated: not NaN

    # a bundle whose weights no longer match its checksum is refused
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    with (broken / "model" / "weights.safetensors").open("r+b") as f:
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(BundleError, match="weights.safetensors"):
        run(tmp_path / "from-broken", f"init_from={broken}", "steps=0")


def test_seed_actor_planner_collects_the_seed_phase_with_the_planner(tmp_path):
    """seed_actor=planner: the seed-phase rows hold the planner's (mu, std), not uniform
    draws with std 0; an unknown actor is a clear error."""
    torch.set_num_threads(1)
    steps = ("steps=40", "checkpoint_every=40", "eval_freq=1000")
    random_run = run(tmp_path / "random", *steps)
    planner_run = run(tmp_path / "planner", *steps, "seed_actor=planner")
    assert random_run.step == planner_run.step == 40
    assert random_run.updates == planner_run.updates == 0  # still in the seed phase
    for trainer, planned in ((random_run, False), (planner_run, True)):
        buf = trainer.buffer
        rows = np.flatnonzero(np.abs(buf.action).sum(axis=1) > 0)
        assert len(rows) >= 39
        if planned:  # the planner's sampling std is never below its minimum
            assert (buf.std[rows] > 0).all()
        else:  # uniform actions, stored as their own mean with std 0
            assert (buf.std[rows] == 0).all()
            assert np.array_equal(buf.mu[rows], buf.action[rows])
    with pytest.raises(ConfigError, match="seed_actor"):
        load_train_config([*TINY, "seed_actor=policy"])


def test_policy_acts_sends_the_policys_action_with_the_planners_target(tmp_path, monkeypatch):
    """policy_acts=1: after the seed phase every step is still planned, the policy's own
    action is sent and stored, and the planner's mean and std go with it as the target."""
    torch.set_num_threads(1)
    cfg = load_train_config(
        [*TINY, f"run_dir={tmp_path}", "steps=30", "seed_steps=10", "policy_acts=1.0"]
    )
    calls: list[tuple[bool, tuple]] = []
    with build_trainer(cfg, resolve_device("cpu")) as trainer:
        real = trainer.agent.act

        def spy(obs, plan_state, eval_mode, use_planner=True, generator=None):
            out = real(obs, plan_state, eval_mode, use_planner, generator)
            calls.append((use_planner, out))
            return out

        monkeypatch.setattr(trainer.agent, "act", spy)
        trainer.run()
    assert [planned for planned, _ in calls] == [True, False] * 20  # steps 10..29
    buf = trainer.buffer
    rows = np.flatnonzero(np.abs(buf.action).sum(axis=1) > 0)[-20:]
    for k, row in enumerate(rows):
        planned, policy = calls[2 * k][1], calls[2 * k + 1][1]
        assert np.array_equal(buf.action[row], policy[0])  # the policy's action was sent
        assert np.array_equal(buf.mu[row], planned[1]) and np.array_equal(buf.std[row], planned[2])
        assert not np.array_equal(policy[0], planned[0])
    with pytest.raises(ConfigError, match="policy_acts"):
        load_train_config([*TINY, "policy_acts=1.5"])
