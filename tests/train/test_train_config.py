"""Training config: presets, the ``size=`` shortcut, strict keys, typed task options, resume from
config.yaml."""

from __future__ import annotations

import pytest

from boom_control.config import dump_yaml
from boom_control.errors import ConfigError
from boom_control.train.config import TrainConfig, load_train_config, model_sizes


def test_defaults_from_train_yaml():
    cfg = load_train_config([])
    assert isinstance(cfg, TrainConfig)
    assert cfg.task == "dmc:walker-walk" and cfg.steps == 1_000_000
    assert cfg.seed_steps_for(500) == 2500 and cfg.seed_steps_for(100) == 1000
    assert cfg.buffer_capacity_or_default() == cfg.steps


@pytest.mark.parametrize("key", ["stpes=10", "model.mlp_dmi=3", "planner.horizn=4", "agnet.lr=1"])
def test_misspelled_keys_are_rejected_with_the_valid_ones(key):
    with pytest.raises(ConfigError, match="unknown config key") as err:
        load_train_config([key])
    assert "valid keys" in str(err.value)


def test_wrong_types_and_values_are_rejected():
    with pytest.raises(ConfigError, match="steps"):
        load_train_config(["steps=lots"])
    with pytest.raises(ConfigError, match="eval_freq"):
        load_train_config(["eval_freq=0"])
    with pytest.raises(ConfigError, match="run_dir"):
        load_train_config(["resume=true"])


@pytest.mark.parametrize("spelling", ["size=1M", "model.size=1M"])
def test_model_size_shortcut_merges_before_overrides(spelling):
    assert {"1M", "5M"} <= set(model_sizes())
    cfg = load_train_config([spelling, "model.mlp_dim=100"])
    assert cfg.model.size == "1M" and cfg.model.latent_dim == 128 and cfg.model.num_q == 2
    assert cfg.model.mlp_dim == 100  # the explicit override wins over the size
    assert load_train_config(["size=5M"]).model.latent_dim == 512


def test_unknown_size_lists_the_available_ones():
    with pytest.raises(ConfigError, match=r"unknown model size '7M'; available: .*1M.*5M"):
        load_train_config(["size=7M"])


@pytest.mark.parametrize(
    ("spelling", "hint"),
    [
        ("preset=1M", "did you mean size=1M"),
        ("model.preset=5M", "did you mean size=5M"),
        ("preset=train_smoke", "did you mean --preset train_smoke"),
    ],
)
def test_preset_key_is_not_a_model_size(spelling, hint):
    """Config presets (--preset, configs/*.yaml) and model sizes (size=) have distinct names."""
    with pytest.raises(ConfigError, match=hint):
        load_train_config([spelling])


def test_task_options_are_checked_when_the_config_is_loaded():
    cfg = load_train_config(["task=dmc:cartpole-swingup", "task_options={action_repeat: 4}"])
    assert cfg.task_options == {"action_repeat": 4}
    with pytest.raises(ConfigError, match=r"task_options: unknown option\(s\) \['reset_noise'\]"):
        load_train_config(["task=dmc:cartpole-swingup", "task_options={reset_noise: 0.1}"])
    with pytest.raises(ConfigError, match="task option 'episode_length' must be int"):
        load_train_config(["task=h1:stand", "task_options={episode_length: long}"])
    cfg = load_train_config(["task=h1:stand", "task_options={reset_noise: 0.1}"])
    assert cfg.task_options == {"reset_noise": 0.1}


def test_saved_configs_of_older_runs_still_load(tmp_path):
    """Runs saved before model sizes had their own key call the size model.preset."""
    saved = load_train_config(["task=dmc:cartpole-swingup", "size=1M"])
    text = tmp_path / "config.yaml"
    dump_yaml(saved, text)
    text.write_text(text.read_text().replace("  size: 1M", "  preset: 1M"))
    cfg = load_train_config([f"run_dir={tmp_path}", "resume=true"])
    assert cfg.model.size == "1M" and cfg.model.latent_dim == 128


def test_resume_starts_from_the_saved_config(tmp_path):
    saved = load_train_config(["task=dmc:cartpole-swingup", "seed=4", "size=1M"])
    dump_yaml(saved, tmp_path / "config.yaml")
    cfg = load_train_config([f"run_dir={tmp_path}", "resume=true", "steps=5000"])
    assert (cfg.task, cfg.seed, cfg.model.size, cfg.steps) == (
        "dmc:cartpole-swingup",
        4,
        "1M",
        5000,
    )
    assert cfg.resume


def test_smoke_preset_loads():
    cfg = load_train_config([], presets=("train", "train_smoke"))
    assert cfg.steps < 1000 and cfg.model.latent_dim == 32
