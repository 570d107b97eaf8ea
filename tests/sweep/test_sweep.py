"""``boom sweep``: the grid, a real 2-task x 2-seed sweep of tiny runs on a local Ray
(interrupted, resumed, skipped once finished) and its report checked against the CSVs."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from boom_control.cli import cli
from boom_control.errors import ConfigError
from boom_control.sweep.grid import Grid, load_grid, run_state
from boom_control.sweep.report import mean_ci

pytest.importorskip("dm_control")


def test_grid_crosses_tasks_variants_and_seeds(tmp_path):
    vary = Grid.parse_vary(["agent.align_lambda=0,auto", "planner.horizon=3"])
    grid = Grid(("dmc:cartpole-swingup", "h1:stand"), (1, 2), vary, ("steps=10",))
    names = [v for v, _ in grid.variants()]
    assert names == ["align_lambda=0,horizon=3", "align_lambda=auto,horizon=3"]
    runs = grid.runs()
    assert len(runs) == 8 and len({r.folder(tmp_path) for r in runs}) == 8
    assert runs[0].folder(tmp_path) == tmp_path / "dmc-cartpole-swingup" / names[0] / "s1"
    assert runs[0].overrides == ("steps=10", "agent.align_lambda=0", "planner.horizon=3")
    grid.save(tmp_path)
    assert load_grid(tmp_path) == grid
    grid.save(tmp_path)  # the same grid again: fine
    with pytest.raises(ConfigError, match="holds another sweep"):
        Grid(("h1:stand",), (1,)).save(tmp_path)
    for bad in (["seed=1,2"], ["steps"], ["x=1", "x=2"]):
        with pytest.raises(ConfigError):
            Grid(("h1:stand",), (1,), Grid.parse_vary(bad))
    with pytest.raises(ConfigError, match="set by the sweep"):
        Grid(("h1:stand",), (1,), overrides=("run_dir=x",))
    assert run_state(tmp_path / "nothing", 10) == "new"


def test_mean_ci_is_students_t():
    x = [1.0, 2.0, 4.0]
    mean, half = mean_ci(x)
    assert mean == pytest.approx(7 / 3)
    assert half == pytest.approx(stats.t.ppf(0.975, 2) * np.std(x, ddof=1) / math.sqrt(3))
    assert math.isnan(mean_ci([5.0])[1]) and mean_ci([5.0])[0] == 5.0


TINY = [
    "task_options={episode_length: 40}",
    "steps=160",
    "seed_steps=80",
    "eval_freq=80",
    "eval_episodes=1",
    "checkpoint_every=80",
    "log_every=40",
    "model.enc_dim=32",
    "model.mlp_dim=32",
    "model.latent_dim=16",
    "model.num_q=2",
    "planner.num_samples=16",
    "planner.num_elites=4",
    "planner.num_pi_trajs=2",
    "planner.iterations=1",
    "agent.batch_size=16",
    "log_tensorboard=false",
]


def _eval_rows(folder):
    with (folder / "eval.csv").open() as f:
        return list(csv.DictReader(f))


def test_a_sweep_runs_resumes_skips_and_reports(tmp_path):
    pytest.importorskip("ray")
    root = tmp_path / "sweep"
    args = ["sweep", str(root), "--task", "dmc:cartpole-swingup", "--task", "h1:stand",
            "--seeds", "1,2", *TINY]  # fmt: skip
    # interrupted: every run stops early with a checkpoint
    first = CliRunner().invoke(cli, [*args, "--minutes", "0.01", "--no-report"])
    assert first.exit_code == 0, first.output
    assert first.output.count("start    ") == 4 and first.output.count("stopped ") == 4
    grid = load_grid(root)
    assert all(run_state(r.folder(root), 160) == "partial" for r in grid.runs())
    # the same command goes on from the checkpoints and finishes
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0, second.output
    assert second.output.count("resume   ") == 4 and second.output.count("finished ") == 4
    assert all(run_state(r.folder(root), 160) == "done" for r in grid.runs())
    # once finished, nothing runs again
    third = CliRunner().invoke(cli, [*args, "--no-report"])
    assert third.exit_code == 0 and "every run of" in third.output
    # the report's numbers are those of the runs' CSVs
    rep = CliRunner().invoke(cli, ["sweep", "report", str(root)])
    assert rep.exit_code == 0, rep.output
    report = json.loads((root / "report.json").read_text())
    assert (root / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(report["cells"]) == 2
    for cell in report["cells"]:
        folders = [r.folder(root) for r in grid.runs() if r.task == cell["task"]]
        rows = [_eval_rows(f) for f in folders]
        assert all(int(r[-1]["step"]) == 160 for r in rows)
        final = [float(r[-1]["planner_return_mean"]) for r in rows]
        best = [max(float(x["planner_return_mean"]) for x in r) for r in rows]
        assert cell["seeds"] == 2 and cell["step"] == 160
        assert cell["final"] == pytest.approx(np.mean(final))
        assert cell["final_ci95"] == pytest.approx(
            stats.t.ppf(0.975, 1) * np.std(final, ddof=1) / math.sqrt(2)
        )
        assert cell["best"] == pytest.approx(np.mean(best))
        assert cell["task"] in rep.output


def test_without_ray_the_sweep_names_the_extra(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    result = CliRunner().invoke(cli, ["sweep", str(tmp_path / "s"), "--task", "h1:stand", *TINY])
    assert result.exit_code == 2
    assert "pip install 'boom-control[ray]'" in result.output
