"""The ``boom`` command: subcommand discovery, ``boom tasks`` output and clean errors."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from boom_control.cli import cli


def test_tasks_lists_dims_for_dmc():
    result = CliRunner().invoke(cli, ["tasks", "--family", "dmc", "--json"])
    assert result.exit_code == 0, result.output
    rows = {
        json.loads(line)["task_id"]: json.loads(line)
        for line in result.output.splitlines()
        if line.startswith("{")
    }
    humanoid = rows["dmc:humanoid-walk"]
    dims = (humanoid["obs_dim"], humanoid["action_dim"], humanoid["episode_length"])
    assert dims == (67, 21, 500)
    assert humanoid["control_rate"] == 20.0
    assert rows["dmc:dog-run"]["action_dim"] == 38
    assert len(rows) > 40  # the whole suite


def test_help_lists_subcommands():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in ("tasks", "train", "eval", "sim"):
        assert name in result.output


def test_user_errors_are_one_line_not_tracebacks():
    proc = subprocess.run(
        [sys.executable, "-m", "boom_control", "tasks", "--family", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "'nope' is not one of" in proc.stderr
