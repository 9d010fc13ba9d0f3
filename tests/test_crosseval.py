"""Cross-dataset evaluation: scenarios from TOML, every model on the same split, binary scores per test set."""

from __future__ import annotations

import pytest

from flowsentinel.config import load_config
from flowsentinel.errors import ConfigError
from flowsentinel.training.crosseval import HELD_OUT, load_scenarios, markdown_table, run_crosseval


def test_scenarios_are_read_and_checked(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[[scenario]]\nname = "a -> b"\ntrain = ["a.csv"]\ntest = ["b.csv"]\n')
    (scenario,) = load_scenarios(path)
    assert scenario.train == ("a.csv",) and scenario.test == ("b.csv",) and scenario.base == str(tmp_path)
    path.write_text('[[scenario]]\nname = "x"\ntrain = ["a.csv"]\ncolour = "red"\n')
    with pytest.raises(ConfigError, match="colour"):
        load_scenarios(path)
    path.write_text('title = "no scenarios"\n')
    with pytest.raises(ConfigError, match="no \\[\\[scenario\\]\\]"):
        load_scenarios(path)


def test_two_files_each_way_side_by_side(tmp_path):
    from flowsentinel.synthetic import generate_flows

    a, b = tmp_path / "NF-BoT-IoT-v2-a.csv", tmp_path / "NF-BoT-IoT-v2-b.csv"
    generate_flows(1500, random_state=1, balance=0.4).to_csv(a, index=False)
    generate_flows(1500, random_state=2, balance=0.4).to_csv(b, index=False)
    (tmp_path / "s.toml").write_text(f'[[scenario]]\nname = "a -> b"\ntrain = ["{a.name}"]\ntest = ["{b.name}"]\n')
    cfg = load_config(None, ["model.num_threads=1", "model.verbose=false", "model.target_far=0.05"])
    result = run_crosseval(load_scenarios(tmp_path / "s.toml"), cfg, ["cnn-bilstm", "extratrees"], tmp_path / "out",
                           epochs=1)
    rows = result["rows"]
    assert {r["model"] for r in rows} == {"cnn-bilstm", "extratrees"}
    assert {r["test"] for r in rows} == {f"{HELD_OUT}: {a.name}", b.name}
    for r in rows:
        assert 0.0 <= r["detection_rate"] <= 1.0 and 0.0 <= r["false_alarm_rate"] <= 1.0
    assert markdown_table(result).count("\n") == 1 + len(rows)
    assert (tmp_path / "out" / "crosseval.md").exists()
