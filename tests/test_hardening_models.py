"""Damaged and tampered model directories (probe of 2026-12-01, D3, D7 "model directories", D15).

Digests (format 2, on main before this work) catch edits of any file; these
tests add what a manifest with matching digests can still carry (a manifest
written by hand or resealed after an edit): every field of the wrong kind is
refused with a :class:`ModelLoadError` naming the manifest, never a traceback.
The property test mutates manifests at random, sealed and unsealed.
"""

from __future__ import annotations

import copy
import json
import os
import shutil

import pytest

from flowsentinel.cli import main
from flowsentinel.errors import ModelIntegrityError, ModelLoadError
from flowsentinel.persistence import MANIFEST, ONNX_FILE, load_model
from tests.hardening_support import reseal

EXAMPLES = int(os.environ.get("FLOWSENTINEL_FUZZ_EXAMPLES", "60"))


def _copy(small_model, tmp_path, name="m"):
    out = tmp_path / name
    shutil.copytree(small_model, out)
    return out


def _edit(directory, change, *, sealed=True):
    path = directory / MANIFEST
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))
    if sealed:
        reseal(directory)


# The probe's manifest cases (md/), sealed so that only the field checks stand between them and a traceback.
CASES = {
    "no classes": lambda m: m.pop("classes"),
    "no params": lambda m: m.pop("params"),
    "classes not a list": lambda m: m.__setitem__("classes", "Benign"),
    "classes repeated": lambda m: m.__setitem__("classes", [m["classes"][0]] * len(m["classes"])),
    "classes cut to fewer than the network gives": lambda m: m.__setitem__("classes", m["classes"][:-1]),
    "threshold text": lambda m: m.__setitem__("threshold", "high"),
    "threshold not finite": lambda m: m.__setitem__("threshold", float("nan")),
    "a parameter of the wrong type": lambda m: m["params"].__setitem__("window", "lots"),
    "params a list": lambda m: m.__setitem__("params", []),
    "input columns one short": lambda m: m.__setitem__("input_columns", m["input_columns"][:-1]),
    "n_model_inputs text": lambda m: m.__setitem__("n_model_inputs", "73"),
    "state a list": lambda m: m.__setitem__("state", [1, 2]),
    "probe damaged": lambda m: m.__setitem__("probe", {"rows": 16}),
    "unknown estimator": lambda m: m.__setitem__("estimator", "Pickle"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_sealed_manifest_with_a_bad_field_is_refused_by_name(small_model, tmp_path, case):
    d = _copy(small_model, tmp_path)
    _edit(d, CASES[case])
    with pytest.raises(ModelLoadError, match=str(d)):
        load_model(d, engine="torch")  # under ONNX Runtime the saved network settings are not run, nor checked


def test_a_network_setting_the_weights_do_not_fit_is_refused(small_model, tmp_path):
    """Found by scripts/fuzz.py (atheris): the torch engine builds the network the parameters describe and
    fills it with the saved weights; ``conv_channels`` changed in a sealed manifest was a torch RuntimeError.
    (ONNX Runtime runs the graph, which the probe checks, and does not build the torch network.)"""
    d = _copy(small_model, tmp_path)
    _edit(d, lambda m: m["params"]["network_params"].__setitem__("conv_channels", [5, 4]))
    with pytest.raises(ModelLoadError, match="weights do not fit the network"):
        load_model(d, engine="torch")


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_unsealed_edit_is_a_digest_mismatch(small_model, tmp_path, case):
    d = _copy(small_model, tmp_path)
    _edit(d, CASES[case], sealed=False)
    with pytest.raises(ModelIntegrityError, match="do not match its digest"):
        load_model(d)


@pytest.mark.parametrize("text", ["[]", "null", "3", '"x"', "{", "", '{"format": "flowsentinel-model"}',
                                  '{"format": "flowsentinel-model", "format_version": "two"}'])
def test_a_manifest_that_is_no_table_is_one_line_in_info_and_detect(small_model, small_flows, tmp_path, capsys,
                                                                     text):
    """D7: ``[]`` or ``null`` as manifest gave AttributeError tracebacks in info and detect."""
    d = _copy(small_model, tmp_path)
    (d / MANIFEST).write_text(text)
    for argv in (["info", "--model-dir", str(d)],
                 ["detect", str(small_flows), "--model-dir", str(d), "-o", str(tmp_path / "v.jsonl")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.count("flowsentinel: error:") == 1 and "manifest" in err


def test_one_flipped_byte_in_the_onnx_weights_is_refused(small_model, small_flows, tmp_path, capsys):
    """D3, the worst case: one byte of ``net.out.bias`` flipped in model.onnx made every alert vanish."""
    onnx = pytest.importorskip("onnx")
    for sealed in (False, True):
        d = _copy(small_model, tmp_path, f"m{sealed}")
        path = d / ONNX_FILE
        data = bytearray(path.read_bytes())
        raw = [i for i in onnx.load(str(path)).graph.initializer if i.name == "net.out.bias"][0].raw_data
        data[data.find(raw) + 3] ^= 0x40
        path.write_bytes(bytes(data))
        if sealed:
            reseal(d)  # the digest matches: the probe run through the graph is what catches it
        code = main(["detect", str(small_flows), "--model-dir", str(d), "-o", str(tmp_path / "v.jsonl"),
                     "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2 and "model.onnx" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def other_weights(tmp_path_factory):
    """``weights.safetensors`` of a model of the same shape trained with another seed (the probe's m2)."""
    from flowsentinel.models.deep import cnn_bilstm
    from flowsentinel.persistence import save_model
    from flowsentinel.synthetic import generate_flows

    det = cnn_bilstm(max_epochs=1, verbose=False, random_state=1, conv_channels=(4, 4), lstm_hidden=4, num_threads=1)
    det.fit(generate_flows(1200, random_state=4, balance=0.3))
    return save_model(det, tmp_path_factory.mktemp("m2") / "model") / "weights.safetensors"


def _json_edit(name, change):
    def edit(d, _):
        path = d / name
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
    return edit


def _flip(d, _):
    path = d / "weights.safetensors"
    data = bytearray(path.read_bytes())
    data[len(data) - 7] ^= 0x40
    path.write_bytes(bytes(data))


def _swap_columns(p):
    c = p["input_columns"]
    i, j = c.index("IN_BYTES"), c.index("OUT_BYTES")
    c[i], c[j] = c[j], c[i]


TAMPERING = {  # D3's table, each as the probe made it (files edited, digests left alone)
    "another model's weights": (lambda d, other: shutil.copy(other, d / "weights.safetensors"), "weights.safetensors"),
    "one byte of the weights flipped": (_flip, "weights.safetensors"),
    "IN_BYTES and OUT_BYTES swapped": (_json_edit("preprocessing.json", _swap_columns), "preprocessing.json"),
    "one mean +5": (_json_edit("preprocessing.json", lambda p: p["mean"].__setitem__(0, p["mean"][0] + 5)),
                    "preprocessing.json"),
    "all scales 0": (_json_edit("preprocessing.json", lambda p: p.__setitem__("scale", [0.0] * len(p["scale"]))),
                     "preprocessing.json"),
    "threshold 2.0": (_json_edit(MANIFEST, lambda m: m.__setitem__("threshold", 2.0)), MANIFEST),
    "classes cut to 3": (_json_edit(MANIFEST, lambda m: m.__setitem__("classes", m["classes"][:-1])), MANIFEST),
}


@pytest.mark.parametrize("engine", ["auto", "torch"])
@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_the_probes_tampered_models_are_refused_by_detect(small_model, small_flows, other_weights, tmp_path, capsys,
                                                          case, engine):
    """D3, cases 171-249 and 368-369: each change scored silently with the altered model, exit 0 (with
    either engine); the classes cut to 3 crashed only once a flow's argmax was the missing class."""
    change, names = TAMPERING[case]
    d = _copy(small_model, tmp_path)
    change(d, other_weights)
    code = main(["detect", str(small_flows), "--model-dir", str(d), "--engine", engine, "-o",
                 str(tmp_path / "v.jsonl"), "--no-progress"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error" in line]
    assert code == 2 and len(lines) == 1 and names in lines[0] and "Traceback" not in err
    assert not (tmp_path / "v.jsonl").exists()


@pytest.fixture(scope="module")
def wider_weights(tmp_path_factory):
    """``weights.safetensors`` of a network of another shape (the probe's m3, ``lstm_hidden=8``)."""
    from flowsentinel.models.deep import cnn_bilstm
    from flowsentinel.persistence import save_model
    from flowsentinel.synthetic import generate_flows

    det = cnn_bilstm(max_epochs=1, verbose=False, random_state=0, conv_channels=(4, 4), lstm_hidden=8, num_threads=1)
    det.fit(generate_flows(1200, random_state=4, balance=0.3))
    return save_model(det, tmp_path_factory.mktemp("m3") / "model") / "weights.safetensors"


def _cut_weights(keep):
    def edit(d, _):
        path = d / "weights.safetensors"
        path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])
    return edit


def _drop_first_feature(p):
    for key in ("output_names", "mean", "scale"):
        del p[key][0]


DAMAGED = {  # D7 "model directories": each gave a traceback (SafetensorError, RuntimeError, KeyError, ...)
    "weights cut to half": (_cut_weights(0.5), "weights.safetensors"),
    "weights empty": (_cut_weights(0), "weights.safetensors"),
    "weights of another shape": (lambda d, wider: shutil.copy(wider, d / "weights.safetensors"),
                                 "weights.safetensors"),
    "preprocessing without mean": (_json_edit("preprocessing.json", lambda p: p.pop("mean")), "preprocessing.json"),
    "preprocessing with an unknown config key": (
        _json_edit("preprocessing.json", lambda p: p["config"].__setitem__("bogus_key", 1)), "preprocessing.json"),
    "a feature removed from preprocessing": (_json_edit("preprocessing.json", _drop_first_feature),
                                             "preprocessing.json"),
}


@pytest.mark.parametrize("sealed", [False, True], ids=["as the probe", "resealed"])
@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_the_probes_damaged_model_files_are_one_line(small_model, small_flows, wider_weights, tmp_path, capsys,
                                                      case, sealed):
    """D7, model directories: refused in one line naming the file (or the directory, when the files do not
    fit together), also when the digests were rewritten to match; the torch engine reads the weights."""
    change, names = DAMAGED[case]
    d = _copy(small_model, tmp_path)
    change(d, wider_weights)
    if sealed:
        reseal(d)
    code = main(["detect", str(small_flows), "--model-dir", str(d), "--engine", "torch", "-o",
                 str(tmp_path / "v.jsonl"), "--no-progress"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error" in line]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err
    # The file, or (resealed, every file intact on its own) the directory whose files do not fit together.
    assert str(d) in lines[0] and (names in lines[0] or "do not fit together" in lines[0]), lines[0]


def test_every_model_file_is_readable_by_others(small_model):
    """Observation: ``weights.safetensors`` was written 0600 while the other files got 0644, so a model
    trained by root could not be read by a service user."""
    modes = {p.name: p.stat().st_mode & 0o777 for p in small_model.iterdir() if p.is_file()}
    assert len(set(modes.values())) == 1 and all(m & 0o044 == 0o044 for m in modes.values()), modes


def test_train_into_a_file_is_refused_before_training(small_flows, tmp_path, capsys):
    """D7: ``train --model-dir out/a_file`` trained, then failed with FileExistsError."""
    (tmp_path / "a_file").write_text("x\n")
    code = main(["train", "--data", str(small_flows), "--model-dir", str(tmp_path / "a_file"), "--epochs", "1",
                 "--no-reference"])
    err = capsys.readouterr().err
    assert code == 2 and "a_file: exists and is not a folder" in err and "epoch" not in err.lower()


# ---- property: random manifest mutations -----------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_ANY = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)


def _paths(value, prefix=()):
    """Every key path into a JSON value."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value[:6]):
            yield from _paths(v, prefix + (i,))


def _apply(manifest, path, op, value):
    if not path:
        return value if op == "replace" else manifest
    parent = manifest
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if op == "delete":
        del parent[last]
    elif op == "replace":
        parent[last] = value
    elif op == "duplicate" and isinstance(parent, list):
        parent.insert(last, copy.deepcopy(parent[last]))
    return manifest


@pytest.mark.fuzz
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=False)
@given(data=st.data(), sealed=st.booleans())
def test_manifest_mutations_are_refused_or_harmless(small_model, small_flows, tmp_path_factory, data, sealed):
    """A mutated manifest is refused with a ModelLoadError, or loads and scores exactly as before.

    Unsealed, any change to a decision field must be a digest mismatch. Sealed (digests recomputed), a
    changed threshold or class name is a legitimate model (the digests cannot tell; see
    docs/reliability.md); what must never happen is another exception.
    """
    import pandas as pd

    from flowsentinel.persistence import DECISION_FIELDS

    original = json.loads((small_model / MANIFEST).read_text())
    manifest = copy.deepcopy(original)
    changes = []
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        paths = list(_paths(manifest))
        path = data.draw(st.sampled_from(paths), label="path")
        op = data.draw(st.sampled_from(["replace", "delete", "duplicate"]), label="op")
        if op == "delete" and not path:
            op = "replace"
        value = data.draw(_ANY, label="value")
        manifest = _apply(manifest, path, op, value)
        changes.append(path[:1])
    d = tmp_path_factory.mktemp("fuzz-manifest") / "m"
    shutil.copytree(small_model, d)
    (d / MANIFEST).write_text(json.dumps(manifest))
    if sealed:
        reseal(d)
    try:
        det = load_model(d, engine="auto")
    except ModelLoadError as exc:
        assert "\n" not in str(exc).strip() and str(d) in str(exc)
        return
    same_decisions = all(
        isinstance(manifest, dict) and manifest.get(k) == original.get(k) for k in DECISION_FIELDS)
    if not sealed:
        assert same_decisions, f"an unsealed change of a decision field loaded: {changes}"
    if same_decisions:
        flows = pd.read_csv(small_flows)
        ref = load_model(small_model, engine="auto")
        assert (det.predict_proba(flows) == ref.predict_proba(flows)).all()
