"""``boom bundle upgrade OLD NEW``: a version-1 bundle (weights in every file) becomes a
version-2 bundle with the same weights stored once, checked for parity again."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from boom_control.bundle.load import BUNDLE_FILE, load_bundle, sha256, write_json
from boom_control.cli import cli
from boom_control.errors import BundleError


def _version_1(random_bundle, root):
    """The tiny bundle in the version-1 layout: ``weights/model.pt`` with the full state
    dict (target Qs included) and a ``bundle.json`` of format version 1 listing it."""
    bundle = load_bundle(random_bundle)
    root.mkdir()
    (root / "weights").mkdir()
    torch.save(bundle.eager_model().state_dict(), root / "weights" / "model.pt")
    meta = {k: v for k, v in bundle.meta.items() if k not in ("weights", "torchscript", "files")}
    meta["format_version"] = 1
    meta["files"] = {"weights/model.pt": sha256(root / "weights" / "model.pt")}
    write_json(root / BUNDLE_FILE, meta)
    (root / "TRAINING.md").write_text("how it was trained\n")
    return bundle


def test_upgrade_keeps_the_weights_and_the_notes(random_bundle, tmp_path):
    old, new = tmp_path / "v1", tmp_path / "v2"
    original = _version_1(random_bundle, old)
    with pytest.raises(BundleError, match="boom bundle upgrade"):
        load_bundle(old)
    result = CliRunner().invoke(cli, ["bundle", "upgrade", str(old), str(new)])
    assert result.exit_code == 0, result.output
    assert "version 2" in result.output
    upgraded = load_bundle(new)
    assert upgraded.meta["format_version"] == 2 and upgraded.meta["parity"]["passed"]
    assert upgraded.meta["training"]["upgraded_from"] == 1
    weights, before = upgraded.weights(), original.weights()
    assert weights.keys() == before.keys()
    assert all(torch.equal(weights[k], before[k]) for k in weights)
    assert (new / "TRAINING.md").read_text() == "how it was trained\n"
    assert "TRAINING.md" not in upgraded.meta["files"]


def test_upgrade_refuses_a_tampered_or_current_bundle(random_bundle, tmp_path):
    old = tmp_path / "v1"
    _version_1(random_bundle, old)
    weights = old / "weights" / "model.pt"
    weights.write_bytes(weights.read_bytes()[:-8])
    result = CliRunner().invoke(cli, ["bundle", "upgrade", str(old), str(tmp_path / "out")])
    assert result.exit_code == 2 and "fails its checksum" in result.output
    assert not (tmp_path / "out").exists()
    result = CliRunner().invoke(cli, ["bundle", "upgrade", str(random_bundle), str(tmp_path / "o")])
    assert result.exit_code == 2 and "upgrade reads version 1" in result.output
    meta = json.loads((random_bundle / BUNDLE_FILE).read_text())
    assert meta["format_version"] == 2


def test_metadata_is_parsed_once_and_names_what_is_missing(random_bundle, tmp_path):
    from boom_control.bundle.meta import BundleMeta

    bundle = load_bundle(random_bundle)
    info = bundle.info
    assert info.format_version == 2 and info.task.task_id == bundle.task_id
    assert info.model.config.num_q == bundle.plan_constants().num_q
    assert info.task.action_mapping.to_json() == bundle.meta["task"]["action_mapping"]
    assert info.parity_max_error is not None and info.parity_max_error <= 1e-4
    broken = {**bundle.meta, "planner": {"config": {}}}
    with pytest.raises(BundleError, match="no 'gamma' entry"):
        BundleMeta.parse(broken)
    with pytest.raises(BundleError, match="wrong form"):
        BundleMeta.parse({**bundle.meta, "format_version": "two"})
