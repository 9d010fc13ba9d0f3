"""Models on disk: identical scores after a save/load round trip, no pickle."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from flowsentinel.errors import MissingColumnsError, ModelIntegrityError
from flowsentinel.models.deep import cnn_bilstm
from flowsentinel.persistence import ModelLoadError, load_model, read_manifest, save_model


@pytest.fixture(scope="module", params=["flow", "window", "flow-binned"])
def fitted(request, sample_frame):
    mode, _, binned = request.param.partition("-")
    det = cnn_bilstm(mode=mode, window=4, input_bins=8 if binned else 0, max_epochs=1, verbose=False,
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


def test_directory_holds_manifest_safetensors_json_and_onnx_only(fitted, tmp_path):
    save_model(fitted, tmp_path / "m", metrics={"accuracy": 0.5})
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == ["manifest.json", "model.onnx", "preprocessing.json", "weights.safetensors"]
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
    with pytest.raises(ModelLoadError, match="newer.*upgrade flowsentinel"):
        load_model(tmp_path / "n")
    manifest["format_version"] = 1
    (tmp_path / "n" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="train it again"):
        load_model(tmp_path / "n")


def test_saving_over_a_model_replaces_its_files(fitted, tmp_path):
    save_model(fitted, tmp_path / "m", metrics={"run": 1})
    (tmp_path / "m" / "report").mkdir()
    (tmp_path / "m" / "report" / "report.md").write_text("kept")
    save_model(fitted, tmp_path / "m", metrics={"run": 2})
    assert read_manifest(tmp_path / "m")["metrics"] == {"run": 2}
    assert (tmp_path / "m" / "report" / "report.md").read_text() == "kept"  # not the model's: moved over
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary folders left beside it


def _flip_byte(path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["weights.safetensors", "preprocessing.json", "model.onnx"])
def test_one_changed_byte_in_any_file_is_refused_naming_it(fitted, tmp_path, name):
    save_model(fitted, tmp_path / "m")
    path = tmp_path / "m" / name
    _flip_byte(path, len(path.read_bytes()) // 2)
    with pytest.raises(ModelIntegrityError, match=name):
        load_model(tmp_path / "m")


@pytest.mark.parametrize("edit", [{"threshold": 2.0}, {"classes": ["Benign", "Attack"]}, {"input_columns": []}])
def test_edited_decision_fields_are_refused(fitted, tmp_path, edit):
    save_model(fitted, tmp_path / "m")
    path = tmp_path / "m" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(edit)
    path.write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match="manifest.json"):
        load_model(tmp_path / "m")


def test_a_graph_that_does_not_compute_the_weights_is_refused(fitted, sample_frame, tmp_path):
    """Another model's graph, with the digests rewritten to match it, still fails the probe."""
    pytest.importorskip("onnxruntime")
    import hashlib

    from flowsentinel.persistence import decision_digest

    train, val = sample_frame.iloc[:3000], sample_frame.iloc[3000:4000]
    mine, other = (cnn_bilstm(mode=fitted.mode, window=4, max_epochs=1, verbose=False, random_state=seed)
                   .fit(train, X_val=val) for seed in (1, 7))
    save_model(mine, tmp_path / "m")
    save_model(other, tmp_path / "o")
    graph = (tmp_path / "o" / "model.onnx").read_bytes()
    (tmp_path / "m" / "model.onnx").write_bytes(graph)
    path = tmp_path / "m" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"]["model.onnx"] = hashlib.sha256(graph).hexdigest()
    manifest["decision_sha256"] = decision_digest(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match="model.onnx.*does not reproduce"):
        load_model(tmp_path / "m", engine="onnx")
