"""Sweep folders on object stores: the mirror's pull and push (file:// and an S3 endpoint
speaking the S3 protocol), and a sweep on S3 that is interrupted, resumed on a node with
an empty mirror from the uploaded checkpoints, and reported into the bucket."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from test_sweep import TINY  # the tiny runs of the local sweep's test

from boom_control.cli import cli
from boom_control.errors import ConfigError
from boom_control.sweep.storage import RemoteFolder, is_uri, mirror_dir
from sim_bridge.testing import free_tcp_port

pytest.importorskip("pyarrow")


def test_uris_and_bad_ones():
    assert is_uri("s3://bucket/x") and is_uri("file:///tmp/x") and not is_uri("runs/x")
    with pytest.raises(ConfigError, match="sweep folder nosuch://"):
        RemoteFolder("nosuch://bucket/x")


def test_push_uploads_what_changed_and_pull_skips_checkpoints(tmp_path):
    store = tmp_path / "store"
    remote = RemoteFolder(f"file://{store}", mirror=tmp_path / "mirror")
    run = remote.mirror / "task" / "base" / "s1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "eval.csv").write_text("step,planner_return_mean\n0,1.0\n")
    (run / "checkpoints" / "latest.pt").write_bytes(b"weights" * 1000)
    (run / "result.json").write_text('{"step": 10}\n')
    assert remote.push("task/base/s1") == 3
    assert remote.push("task/base/s1") == 0  # nothing changed
    (run / "eval.csv").write_text("step,planner_return_mean\n0,1.0\n5,2.0\n")
    assert remote.push("task/base/s1") == 1
    assert (store / "task/base/s1/eval.csv").read_text().endswith("5,2.0\n")
    assert remote.exists("task/base/s1/checkpoints/latest.pt") and not remote.exists("nope")
    assert not list(store.rglob("*.part"))
    # another node: a fresh mirror
    other = RemoteFolder(f"file://{store}", mirror=tmp_path / "other")
    other.pull(checkpoints=False)
    assert (other.mirror / "task/base/s1/result.json").is_file()
    assert not (other.mirror / "task/base/s1/checkpoints").exists()
    local = other.pull("task/base/s1")
    assert (local / "checkpoints" / "latest.pt").read_bytes() == b"weights" * 1000


@pytest.fixture
def s3_bucket(monkeypatch):
    """A local S3 endpoint (moto's server) with an empty bucket; yields the sweep URI."""
    server_mod = pytest.importorskip("moto.server")
    from pyarrow import fs

    for key, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(key, value)
    port = free_tcp_port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"127.0.0.1:{port}"
        s3 = fs.S3FileSystem(endpoint_override=endpoint, scheme="http", allow_bucket_creation=True)
        s3.create_dir("sweeps")
        yield f"s3://sweeps/cmp?endpoint_override={endpoint}&scheme=http", s3
    finally:
        server.stop()


def test_a_sweep_on_s3_resumes_from_uploaded_checkpoints_and_reports_there(s3_bucket):
    pytest.importorskip("ray")
    pytest.importorskip("dm_control")
    uri, s3 = s3_bucket
    args = ["sweep", uri, "--task", "dmc:cartpole-swingup", "--seeds", "1,2", *TINY]
    first = CliRunner().invoke(cli, [*args, "--minutes", "0.01", "--no-report"])
    assert first.exit_code == 0, first.output
    assert first.output.count("start    ") == 2 and first.output.count("stopped ") == 2
    for seed in (1, 2):
        run = f"sweeps/cmp/dmc-cartpole-swingup/base/s{seed}"
        info = s3.get_file_info(f"{run}/checkpoints/latest.pt")
        assert info.size > 0  # uploaded as it was written
    # a node that has never seen the sweep: nothing local, everything from the bucket
    shutil.rmtree(mirror_dir(uri))
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0, second.output
    assert second.output.count("resume   ") == 2 and second.output.count("finished ") == 2
    with s3.open_input_stream("sweeps/cmp/report.json") as f:
        report = json.loads(f.read())
    assert report["cells"][0]["seeds"] == 2 and report["cells"][0]["step"] == 160
    with s3.open_input_stream("sweeps/cmp/dmc-cartpole-swingup/base/s1/result.json") as f:
        assert json.loads(f.read())["finished"]
    third = CliRunner().invoke(cli, [*args, "--no-report"])
    assert third.exit_code == 0 and "every run of" in third.output
    rep = CliRunner().invoke(cli, ["sweep", "report", uri, "--no-plot"])
    assert rep.exit_code == 0 and "cartpole" in rep.output, rep.output
