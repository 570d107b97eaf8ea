"""Export: a freshly trained tiny run -> bundle; parity, tampering, contract checks."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from click.testing import CliRunner

from boom_control.cli import cli
from boom_control.envs import make_env
from boom_control.envs.contract import ObservationContract, ObsField
from boom_control.errors import BundleError, ParityError
from export import load_bundle
from export.parity import parity_error

TASK = "h1:stand"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A few hundred steps of real training on the H1 task with a tiny model."""
    run = tmp_path_factory.mktemp("run") / "h1-tiny"
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "--preset",
            "train_smoke",
            f"task={TASK}",
            "task_options.episode_length=100",
            "steps=300",
            "seed_steps=200",
            "eval_freq=300",
            "checkpoint_every=300",
            "device=cpu",
            f"run_dir={run}",
        ],
    )
    assert result.exit_code == 0, result.output
    return run


@pytest.fixture(scope="module")
def bundle_dir(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundles") / "h1"
    result = CliRunner().invoke(cli, ["export", str(run_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output
    return out


def test_bundle_metadata_describes_the_task(bundle_dir):
    bundle = load_bundle(bundle_dir)
    spec = make_env(TASK).spec
    meta = bundle.meta
    assert meta["format_version"] == 2 and bundle.task_id == TASK
    assert (bundle.obs_dim, bundle.action_dim) == (spec.obs_dim, spec.action_dim)
    assert meta["task"]["contract_hash"] == spec.contract.hash == bundle.contract.hash
    assert meta["task"]["control_rate"] == pytest.approx(50.0)
    mapping = meta["task"]["action_mapping"]
    assert mapping["kind"] == "position" and len(mapping["kp"]) == spec.action_dim
    assert len(mapping["names"]) == spec.action_dim
    assert meta["training"]["step"] == 300 and meta["training"]["init_from"] is None
    assert meta["opset"] == 17
    assert set(meta["parts"]) >= {"encoder", "dynamics", "reward", "q", "policy", "rollout_value"}
    assert "termination" in meta["parts"]  # H1 episodes end in a fall
    for part in meta["parts"].values():
        assert part["onnx"] in meta["files"]
    assert meta["weights"] in meta["files"] and meta["torchscript"]["file"] in meta["files"]
    assert {"torch", "onnx", "onnxruntime"} <= set(meta["versions"])


def test_the_weights_are_stored_once(bundle_dir):
    """One copy: every ONNX tensor is external data inside the safetensors file, and the
    TorchScript module holds no weights; together the model files are barely larger than
    the weights themselves."""
    import onnx

    bundle = load_bundle(bundle_dir)
    weights = bundle.root / bundle.meta["weights"]
    stored = sum(t.numel() * t.element_size() for t in bundle.weights().values())
    assert not any(k.startswith("_target_Qs.") for k in bundle.weights())
    for path in bundle.onnx_files().values():
        graph = onnx.load(str(path), load_external_data=False)
        assert graph.graph.initializer
        for tensor in graph.graph.initializer:
            assert tensor.data_location == onnx.TensorProto.EXTERNAL and not tensor.raw_data
            location = {e.key: e.value for e in tensor.external_data}["location"]
            assert (path.parent / location) == weights
    model_files = sum(p.stat().st_size for p in (bundle.root / "model").iterdir())
    assert weights.stat().st_size < stored + 64 * 1024
    assert model_files < weights.stat().st_size + 1.5 * 1024 * 1024


def test_parity_report_on_real_observations(bundle_dir):
    report = json.loads((bundle_dir / "parity.json").read_text())
    assert report["passed"] and report["observations_from"] == TASK
    assert report["max_error"] <= 1e-4
    for part, errs in report["parts"].items():
        assert set(errs) == {"onnxruntime_cpu", "torchscript"}, part
    assert report["plan"]["onnxruntime_cpu"]["action_max_error"] <= 1e-4


def test_parity_error_scales_with_the_output_row():
    # a saturated policy row: float32 rounding of the near-zero mean is that of its
    # +-100 neighbours, so it is measured against them
    ref = torch.tensor([[120.0, -0.1, -95.0], [0.5, -0.2, 0.3]])
    out = ref + torch.tensor([[0.0, 2e-4, 0.0], [0.0, 0.0, 0.0]])
    assert parity_error(out, ref) == pytest.approx(2e-4 / 120.0, rel=1e-3)
    # below 1 the measure is absolute, whatever else is in the row
    out = ref + torch.tensor([[0.0, 0.0, 0.0], [0.0, 2e-4, 0.0]])
    assert parity_error(out, ref) == pytest.approx(2e-4, rel=1e-3)
    # one value per sample (rollout values): relative to the value itself
    values = torch.tensor([300.0, 0.2])
    assert parity_error(values + torch.tensor([0.0, 2e-4]), values) == pytest.approx(2e-4, rel=1e-3)
    assert parity_error(values + torch.tensor([0.03, 0.0]), values) == pytest.approx(1e-4, rel=1e-3)


def test_backends_agree_on_fresh_observations(bundle_dir):
    bundle = load_bundle(bundle_dir)
    env = make_env(TASK, seed=3)
    obs = torch.as_tensor(env.reset(seed=3)[0]).unsqueeze(0)
    models = {b: bundle.model(b) for b in ("torch", "torchscript", "onnx")}
    z = {b: m.encode(obs) for b, m in models.items()}
    mean = {b: models[b].pi(z[b], torch.zeros(1, bundle.action_dim))[1]["mean"] for b in models}
    for b in ("torchscript", "onnx"):
        assert torch.allclose(z[b], z["torch"], atol=1e-5)
        assert torch.allclose(mean[b], mean["torch"], atol=1e-5)


def test_tampered_or_truncated_file_is_detected(bundle_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(bundle_dir, copy)
    path = copy / "model" / "policy.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model/policy.onnx fails its checksum"):
        load_bundle(copy)
    shutil.copytree(bundle_dir, copy, dirs_exist_ok=True)
    weights = copy / "model" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(BundleError, match="weights.safetensors fails its checksum"):
        load_bundle(copy)
    (copy / "model" / "parts.pt").unlink()
    with pytest.raises(BundleError, match="missing"):
        load_bundle(copy)


def test_wrong_format_version_and_garbage_json(bundle_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(bundle_dir, copy)
    meta = json.loads((copy / "bundle.json").read_text())
    (copy / "bundle.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(BundleError, match="format version 99 is not supported"):
        load_bundle(copy)
    (copy / "bundle.json").write_text("{not json")
    with pytest.raises(BundleError, match="corrupted"):
        load_bundle(copy)
    with pytest.raises(BundleError, match="not a bundle"):
        load_bundle(tmp_path)


def test_mismatched_observation_contract_is_refused_by_name(bundle_dir):
    other = make_env("dmc:cartpole-swingup").spec.contract
    with pytest.raises(BundleError, match="observation contract mismatch") as err:
        load_bundle(bundle_dir, contract=other)
    assert TASK in str(err.value)
    renamed = ObservationContract(
        tuple(
            ObsField(f.key, f.size, "deg" if f.key == "qpos" else f.unit, f.names)
            for f in load_bundle(bundle_dir).contract.fields
        )
    )
    with pytest.raises(BundleError, match="qpos"):
        load_bundle(bundle_dir, contract=renamed)


def test_export_is_reproducible(run_dir, bundle_dir, tmp_path):
    """ONNX files and weights are byte-identical; TorchScript archives embed a random
    serialization id, so for them identical outputs on the parity inputs are checked."""
    again = tmp_path / "again"
    result = CliRunner().invoke(cli, ["export", str(run_dir), "--out", str(again)])
    assert result.exit_code == 0, result.output
    first, second = load_bundle(bundle_dir).meta["files"], load_bundle(again).meta["files"]
    assert first.keys() == second.keys()
    for rel in first:
        if rel != "model/parts.pt":
            assert first[rel] == second[rel], rel
    a = json.loads((bundle_dir / "parity.json").read_text())
    b = json.loads((again / "parity.json").read_text())
    assert a == b


def test_parity_failure_writes_no_bundle(run_dir, tmp_path):
    from export.exporter import export_run

    out = tmp_path / "strict"
    with pytest.raises(ParityError, match="no bundle written"):
        export_run(run_dir, out, tolerance=0.0 - 1.0)
    assert not out.exists()


def test_overwrite_replaces_the_bundle_and_keeps_notes_beside_it(run_dir, bundle_dir, tmp_path):
    """--overwrite rewrites every bundle file; files the bundle does not list stay."""
    out = tmp_path / "h1"
    shutil.copytree(bundle_dir, out)
    (out / "TRAINING.md").write_text("how it was trained\n")
    (out / "model" / "encoder.onnx").write_bytes(b"stale")  # a listed file: replaced
    result = CliRunner().invoke(cli, ["export", str(run_dir), "--out", str(out), "--overwrite"])
    assert result.exit_code == 0, result.output
    bundle = load_bundle(out)  # checksums hold again
    assert (out / "TRAINING.md").read_text() == "how it was trained\n"
    assert "TRAINING.md" not in bundle.meta["files"]


def test_existing_bundle_needs_overwrite(run_dir, bundle_dir):
    result = CliRunner().invoke(cli, ["export", str(run_dir), "--out", str(bundle_dir)])
    assert result.exit_code != 0 and "--overwrite" in result.output


def test_fast_mish_models_export_through_an_exact_twin():
    from boom_control.model.config import ModelConfig
    from boom_control.model.world_model import WorldModel
    from export.exporter import exportable

    cfg = ModelConfig(enc_dim=32, mlp_dim=32, latent_dim=16, num_q=2, mish="fast")
    fast = WorldModel(9, 3, cfg, terminates=True).eval()
    exact = exportable(fast)
    assert exact is not fast and exact.cfg.mish == "exact"
    assert exportable(exact) is exact
    for key, value in fast.state_dict().items():
        assert torch.equal(value, exact.state_dict()[key]), key
    obs = torch.randn(5, 9)
    z_fast, z_exact = fast.encode(obs), exact.encode(obs)
    assert torch.allclose(z_fast, z_exact, atol=1e-6)
    a = torch.zeros(5, 3)
    assert torch.allclose(fast.next(z_fast, a), exact.next(z_exact, a), atol=1e-6)
    # and the exact twin traces (the fast form's autograd function does not)
    torch.jit.trace(exact._encoder, obs)
