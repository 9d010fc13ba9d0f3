"""Models on disk: identical scores after a save/load round trip, no pickle."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from flowsentinel.features import MissingColumnsError
from flowsentinel.models.deep import CNNBiLSTMDetector
from flowsentinel.persistence import ModelLoadError, load_model, read_manifest, save_model


@pytest.fixture(scope="module", params=["flow", "window", "flow-binned"])
def fitted(request, sample_frame):
    mode, _, binned = request.param.partition("-")
    det = CNNBiLSTMDetector(mode=mode, window=4, input_bins=8 if binned else 0, max_epochs=1, verbose=False,
                            random_state=1)
    return det.fit(sample_frame.iloc[:4000])


def test_round_trip_gives_identical_scores(fitted, sample_frame, tmp_path):
    test = sample_frame.iloc[4000:]
    before = fitted.predict_proba(test)
    save_model(fitted, tmp_path / "m", training_data={"n_flows": 4000})
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(before, loaded.predict_proba(test))
    np.testing.assert_array_equal(fitted.predict(test), loaded.predict(test))
    assert loaded.threshold_ == fitted.threshold_
    assert list(loaded.classes_) == list(fitted.classes_)


def test_directory_holds_manifest_safetensors_and_json_only(fitted, tmp_path):
    save_model(fitted, tmp_path / "m", metrics={"accuracy": 0.5})
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == ["manifest.json", "preprocessing.json", "weights.safetensors"]
    manifest = read_manifest(tmp_path / "m")
    assert manifest["versions"]["torch"] and manifest["versions"]["python"]
    assert manifest["schema"] == "v2"
    assert manifest["classes"][0] == "Benign"
    assert manifest["metrics"] == {"accuracy": 0.5}
    assert "IPV4_SRC_ADDR" not in manifest["input_columns"]
    weights = load_file(str(tmp_path / "m" / "weights.safetensors"))
    assert "lstm.weight_ih_l0_reverse" in weights and "features.0.conv.weight" in weights
    json.loads((tmp_path / "m" / "preprocessing.json").read_text())
    for p in (tmp_path / "m").iterdir():
        assert b"\x80\x04" not in p.read_bytes()[:2]  # no pickle protocol header


def test_loaded_model_names_missing_columns(fitted, sample_frame, tmp_path):
    save_model(fitted, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    with pytest.raises(MissingColumnsError, match="IN_BYTES"):
        loaded.predict_proba(sample_frame.drop(columns=["IN_BYTES"]))


def test_bad_model_directories(tmp_path, fitted):
    with pytest.raises(ModelLoadError, match="no such model directory"):
        load_model(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="manifest.json is missing"):
        load_model(tmp_path / "empty")
    save_model(fitted, tmp_path / "m")
    (tmp_path / "m" / "weights.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="weights.safetensors is missing"):
        load_model(tmp_path / "m")
    save_model(fitted, tmp_path / "n")
    manifest = json.loads((tmp_path / "n" / "manifest.json").read_text())
    manifest["format_version"] = 99
    (tmp_path / "n" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="newer"):
        load_model(tmp_path / "n")
