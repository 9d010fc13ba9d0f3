"""``flowsentinel adapt`` end to end on a small slice: a model meets a device it never saw."""

from __future__ import annotations

import json

import pytest

from flowsentinel.cli import main
from flowsentinel.persistence import load_model
from flowsentinel.training.adapt import AdaptConfig, _parts


@pytest.fixture(scope="module")
def base_model(tmp_path_factory, real_data):
    from tests.conftest import data_root

    if not real_data or not (data_root() / "pcaps" / "benign" / "iot-sentinel").is_dir():
        pytest.skip("needs the shared data folder (NF-BoT-IoT-v2 sample and the iot-sentinel captures)")
    out = tmp_path_factory.mktemp("adapt") / "base"
    assert main(["-q", "train", "--data", "data:nf-bot-iot-v2/NF-BoT-IoT-v2-sample.csv.gz,max_rows=3000",
                 "--data", "data:pcaps/benign/iot-sentinel/Aria=Benign",
                 "--data", "data:pcaps/benign/iot-sentinel/WeMoLink=Benign",
                 "--protocol", "group", "--task", "binary", "--epochs", "1", "--no-reference",
                 "--set", "model.target_far=0.01", "--set", "model.num_threads=1", "--model-dir", str(out)]) == 0
    return out


def test_adapt_recalibrates_on_the_network_and_saves_a_loadable_model(base_model, tmp_path, capsys):
    out = tmp_path / "adapted"
    assert main(["-q", "adapt", "--model-dir", str(base_model), "--benign", "data:pcaps/benign/iot-sentinel/HueSwitch",
                 "--output-dir", str(out), "--epochs", "1", "--target-far", "0.01"]) == 0
    text = capsys.readouterr().out
    assert "before" in text and "after" in text and "held-back" in text
    adapted = load_model(out)
    manifest = adapted.manifest_
    assert manifest["adapted_from"] == str(base_model)
    assert manifest["training_data"]["adapted_to"]["flows"]["network_held_back"] > 0
    before, after = manifest["metrics"]["adapted"]["before"], manifest["metrics"]["adapted"]["after"]
    assert set(before) == set(after) == {"held_back_far", "attack_detection", "held_back_far_context",
                                         "attack_detection_context"}
    # Host context is not adapted and only adds alerts: with it, detection is never below the model's.
    assert all(r["attack_detection_context"] >= r["attack_detection"] for r in (before, after))
    assert "with host context" in text
    assert adapted.threshold_ >= load_model(base_model).threshold_  # never below the model's own policy
    json.dumps(manifest)  # the record stays plain JSON


def test_network_flows_split_whole_groups_or_by_time():
    import pandas as pd

    groups = pd.DataFrame({"Group": ["a"] * 4 + ["b"] * 4 + ["c"] * 4 + ["d"] * 4 + ["e"] * 4})
    learn, cal, rep, names = _parts(groups, AdaptConfig().shares, 0)
    assert set(names["learn"]).isdisjoint(names["report"]) and set(names["threshold"]).isdisjoint(names["report"])
    assert len(learn) + len(cal) + len(rep) == 20
    one = pd.DataFrame({"Group": ["only"] * 10})
    learn, cal, rep, _ = _parts(one, AdaptConfig().shares, 0)
    assert list(learn) == list(range(6)) and list(rep) == [8, 9]  # the last flows are held back
