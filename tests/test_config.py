"""Configuration: TOML files, overrides, and the documented defaults staying true."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from flowsentinel.config import ConfigError, ExperimentConfig, build_detector, load_config
from flowsentinel.features import FeatureConfig
from flowsentinel.models.deep import DeepDetector
from flowsentinel.models.presets import network_defaults

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_default_toml_states_the_real_defaults():
    cfg = load_config(CONFIGS / "default.toml")
    assert cfg.run == ExperimentConfig().run
    assert cfg.features == FeatureConfig()
    params = {**DeepDetector().get_params(), **network_defaults("cnn-bilstm")}
    for key, value in cfg.model.items():
        assert params[key] == value, key
    # Every model parameter is stated, except those set elsewhere or per run.
    elsewhere = {"task", "feature_config", "random_state", "verbose", "num_threads", "time_column", "threshold",
                 "target_far", "network_params", "callbacks", "backend", "distributed"}
    assert set(params) - set(cfg.model) - elsewhere == set()


def test_overrides_win_over_the_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[model]\ndropout = 0.5\n[run]\ntask = 'binary'\n")
    cfg = load_config(path, ["model.dropout=0.1", "model.conv_channels=[4, 4]"])
    assert cfg.model["dropout"] == 0.1 and cfg.model["conv_channels"] == (4, 4) and cfg.run.task == "binary"


@pytest.mark.parametrize(
    "text,overrides,match",
    [
        ("[nope]\na = 1\n", [], "unknown section"),
        ("[model]\nwidth = 3\n", [], "unknown key"),
        ("[run]\ntask = 'regression'\n", [], "run.task"),
        ("[run\n", [], "invalid TOML"),
        ("", ["model"], "section.key=value"),
        ("", ["features.nope=1"], "unknown key"),
        ("[run]\nseed = 'x'\n", [], "seed: must be a whole number"),
        ("[model]\nmax_epochs = 'ten'\n", [], "max_epochs must be a whole number"),
        ("", ["model.max_epochs=1.5"], "max_epochs"),
        ("", ["model.max_epochs=0"], "max_epochs"),
        ("", ["model.kernel_size=0"], "kernel_size"),
        ("", ["model.pool=0"], "pool"),
        ("", ["model.input_bins=-2"], "input_bins"),
        ("", ["model.batch_size=0"], "batch_size"),
        ("", ["model.dropout='abc'"], "dropout"),
        ("", ["model.conv_channels='8,16'"], "conv_channels"),
        ("", ["model.dropout=[1,2"], "not closed"),
        ("", ["run.fractions=[0.5, 0.5, 'x']"], "fractions"),
        ("", ["run.max_rows=-5"], "max_rows"),
        ("[features]\nexclude = 'IN_BYTES'\n", [], "exclude: must be a list"),
        ("[features]\ninclude_ports = 3\n", [], "include_ports: must be true or false"),
        ("", ["model.network='nope'"], "unknown model"),
    ],
)
def test_bad_configs_say_what_is_wrong(tmp_path, text, overrides, match):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(path, overrides)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml")


def test_config_serialises_for_the_manifest():
    d = load_config(None, ["features.include_ports=true"]).to_dict()
    assert d["features"]["include_ports"] is True and asdict(FeatureConfig())["log_scale"] is True


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_config_loads_and_builds_a_detector(path):
    cfg = load_config(path)
    det = build_detector(cfg)
    params = {**det.get_params(), **(det.get_params().get("network_params") or {})}
    assert params["feature_config"] == cfg.features and params["task"] == cfg.run.task
    assert all(params[key] == value for key, value in cfg.model.items() if key != "network")
    from flowsentinel.models.deep import MONITORS

    assert params["monitor"] in MONITORS


def test_a_binary_file_as_config_is_named(tmp_path):
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\x80\x81\x00\xff")
    with pytest.raises(ConfigError, match="binary.toml: not a text file"):
        load_config(path)
