"""flowsentinel tune: a tiny Optuna study on synthetic flows, its TOML output, resuming it."""

from __future__ import annotations

import argparse

import pytest

optuna = pytest.importorskip("optuna")

from flowsentinel.cli import main  # noqa: E402
from flowsentinel.cli.tune import add_arguments as add_tune_arguments  # noqa: E402
from flowsentinel.config import ExperimentConfig, load_config  # noqa: E402
from flowsentinel.training.tune import TuneConfig, tune  # noqa: E402

# One thread: the test machines are small and shared; two threads contend.
CFG = ExperimentConfig(model={"num_threads": 1})


def tiny(tmp_path, **kw) -> TuneConfig:
    settings = dict(n_trials=2, max_epochs=1, storage=f"sqlite:///{tmp_path}/study.db", study_name="t",
                    out_config=str(tmp_path / "best.toml"), startup_trials=1)
    return TuneConfig(**{**settings, **kw})


def test_two_trials_write_a_loadable_config_and_resume_adds_trials(tmp_path, synthetic, caplog):
    caplog.set_level("INFO", logger="flowsentinel.training.tune")
    first = tune(CFG, tiny(tmp_path), flows=synthetic)
    assert first.n_trials == 2 and first.n_complete + first.n_pruned == 2
    assert 0.0 <= first.best_value <= 1.0
    assert caplog.text.count("trial ") >= 2  # one progress line per trial

    cfg = load_config(first.config_path)
    assert cfg.model["lstm_hidden"] == first.best_params["lstm_hidden"]
    assert isinstance(cfg.model["conv_channels"], tuple)
    assert cfg.model["num_threads"] == 1  # fixed values are kept
    assert "max_epochs" not in cfg.model  # trial length is not the training length
    assert cfg.run == CFG.run and cfg.features == CFG.features

    second = tune(CFG, tiny(tmp_path, n_trials=1), flows=synthetic)
    assert second.n_trials == 3
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path}/study.db")
    assert len(study.trials) == 3


def test_pruned_trial_is_reported_as_pruned(tmp_path, synthetic):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/study.db", study_name="t", direction="maximize")
    # A perfect earlier trial at every epoch makes the median pruner prune anything below it.
    study.add_trial(optuna.trial.create_trial(
        params={}, distributions={}, value=1.0, intermediate_values={1: 1.0, 2: 1.0, 3: 1.0}))
    cfg = TuneConfig(n_trials=1, max_epochs=3, storage=f"sqlite:///{tmp_path}/study.db", study_name="t",
                     out_config=str(tmp_path / "best.toml"), startup_trials=0, warmup_epochs=0)
    result = tune(CFG, cfg, flows=synthetic.iloc[:800])
    assert result.n_pruned == 1


def test_cli_arguments(tmp_path, synthetic, monkeypatch, capsys):
    import flowsentinel.training.tune as tuning

    data = tmp_path / "flows.csv"
    synthetic.iloc[:1000].to_csv(data, index=False)
    argv = ["--data", str(data), "--trials", "1", "--epochs", "1", "--set", "model.num_threads=1",
            "--storage", f"sqlite:///{tmp_path}/cli.db", "--out", str(tmp_path / "cli.toml")]
    parser = argparse.ArgumentParser()
    add_tune_arguments(parser)
    args = parser.parse_args(argv)
    assert main(["-q", "tune", *argv]) == 0
    assert "config:" in capsys.readouterr().out
    assert load_config(tmp_path / "cli.toml").run.data == (str(data),)
    assert tuning.TuneConfig().study_name == args.study_name
