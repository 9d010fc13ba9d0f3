"""Configs and overrides (probe of 2026-12-01, D7 "configs", D8, D14, D15).

The probe's cases are checked by ``load_config`` alone (no training: they
must be refused before any data is read); the property test throws random
TOML documents and ``--set`` values at it: a
:class:`~flowsentinel.errors.ConfigError` or a config, never anything else.
"""

from __future__ import annotations

import os

import pytest

from flowsentinel.config import load_config
from flowsentinel.errors import ConfigError

EXAMPLES = int(os.environ.get("FLOWSENTINEL_FUZZ_EXAMPLES", "60"))

# (config text or None, overrides, what the one line must name)
CASES = {
    "wrong_type_seed": ('[run]\nseed = "x"\n', [], "seed"),
    "wrong_type_epochs": ('[model]\nmax_epochs = "ten"\n', [], "max_epochs"),
    "negative epochs in a config (D8)": ("[model]\nmax_epochs = -3\n", [], "max_epochs"),
    "--epochs -1 (D8)": (None, ["model.max_epochs=-1"], "max_epochs"),
    "--epochs 0 (D8)": (None, ["model.max_epochs=0"], "max_epochs"),
    "--set model.max_epochs=1.5": (None, ["model.max_epochs=1.5"], "max_epochs"),
    "--set model.kernel_size=0": (None, ["model.kernel_size=0"], "kernel_size"),
    "--set model.pool=0 (ZeroDivisionError)": (None, ["model.pool=0"], "pool"),
    "--set model.input_bins=-2": (None, ["model.input_bins=-2"], "input_bins"),
    "--set model.batch_size=0 (range() arg 3)": (None, ["model.batch_size=0"], "batch_size"),
    "--set model.dropout=[1,2": (None, ["model.dropout=[1,2"], "[model] dropout: cannot read '[1,2'"),
    'dropout = "abc"': ('[model]\ndropout = "abc"\n', [], "dropout"),
    'conv_channels = "8,16"': ('[model]\nconv_channels = "8,16"\n', [], "conv_channels"),
    'fractions = [.5, .5, "x"]': ('[run]\nfractions = [0.5, 0.5, "x"]\n', [], "fractions"),
    'exclude = "IN_BYTES" (D14)': ('[features]\nexclude = "IN_BYTES"\n', [], "exclude"),
    'exclude = ["NOT_A_COLUMN"] (D14)': ('[features]\nexclude = ["NOT_A_COLUMN"]\n', [], "NOT_A_COLUMN"),
    "include_ports = 3 (D14)": ("[features]\ninclude_ports = 3\n", [], "include_ports"),
    "--max-rows -5 (D14)": (None, ["run.max_rows=-5"], "max_rows"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_probes_config_mistakes_are_one_line_naming_the_key(tmp_path, case):
    text, overrides, key = CASES[case]
    path = None
    if text is not None:
        path = tmp_path / "c.toml"
        path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    assert key in str(info.value) and "\n" not in str(info.value).strip()


def test_a_binary_config_names_the_file(tmp_path):
    """D15: ``--config binary.toml`` gave a bare utf-8 decode error."""
    path = tmp_path / "binary.toml"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(ConfigError, match="binary.toml: not a text file"):
        load_config(path)


def test_exclude_of_a_real_column_still_works():
    assert load_config(None, ['features.exclude=["IN_BYTES"]']).features.exclude == ("IN_BYTES",)


def test_a_config_typo_gets_a_suggestion():
    with pytest.raises(ConfigError, match="did you mean IN_BYTES"):
        load_config(None, ['features.exclude=["IN_BYTE"]'])


# ---- property: random TOML ---------------------------------------------------------------------------

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

KEYS = {
    "run": ["data", "task", "protocol", "seed", "fractions", "max_rows", "references", "synthetic_flows", "backend",
            "balance", "nope"],
    "model": ["network", "max_epochs", "batch_size", "dropout", "conv_channels", "kernel_size", "pool", "lstm_hidden",
              "input_bins", "threshold", "target_far", "mode", "window", "patience", "lr", "val_fraction",
              "num_threads", "nope"],
    "features": ["include_ports", "port_classes", "log_scale", "decode_tcp_flags", "exclude", "max_categories",
                 "nope"],
    "extra": ["x"],
}

_SCALAR = (st.none() | st.booleans() | st.integers(-2**65, 2**65) | st.sampled_from([0, 1, 2, -1, 8, 64])
           | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, 0.5, 1.0, 1e-9, 1e300])
           | st.text(max_size=10) | st.sampled_from(["cnn-bilstm", "dnn", "binary", "paper", "torch", "IN_BYTES",
                                                    "window", "flow", "extratrees"]))
_VALUE = st.recursive(_SCALAR, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.sampled_from(["path", "label", "max_rows", "x"]), inner, max_size=3),
                      max_leaves=6)


def _toml(value) -> str:
    """A TOML literal for a generated value (``None`` has none: written as a bare word, which TOML refuses)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"


@st.composite
def documents(draw):
    lines = []
    for section in draw(st.lists(st.sampled_from(sorted(KEYS)), max_size=3, unique=True)):
        lines.append(f"[{section}]")
        for key in draw(st.lists(st.sampled_from(KEYS[section]), max_size=4, unique=True)):
            lines.append(f"{key} = {_toml(draw(_VALUE))}")
    text = "\n".join(lines) + "\n"
    if draw(st.integers(0, 9)) == 0:  # now and then, damage the text itself
        pos = draw(st.integers(0, len(text)))
        text = text[:pos] + draw(st.text(max_size=4)) + text[pos:]
    return text


@pytest.mark.fuzz
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=documents(), overrides=st.lists(
    st.tuples(st.sampled_from(sorted(KEYS)), st.sampled_from(sorted({k for v in KEYS.values() for k in v})),
              _VALUE.map(_toml) | st.text(max_size=8)).map(lambda t: f"{t[0]}.{t[1]}={t[2]}"), max_size=2))
def test_random_configs_are_a_config_or_one_config_error(tmp_path_factory, text, overrides):
    path = tmp_path_factory.mktemp("fuzz-config") / "c.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        cfg = load_config(path, overrides)
    except ConfigError as exc:
        assert str(exc).strip()  # the CLI prints its first line
        return
    # A config that loads builds its detector (that is what the checks stand for).
    from flowsentinel.config import build_detector

    build_detector(cfg).check_params()


@pytest.mark.parametrize("argv, key", [
    (["train", "--epochs", "0"], "max_epochs"),  # D8, case 360: dropped by a truth test, 20 epochs run
    (["train", "--epochs", "-1"], "max_epochs"),  # D8, case 288
    (["train", "--max-rows", "-5"], "max_rows"),  # D14, case 292
    (["benchmark", "--models", "extratrees", "--epochs", "-1"], "epochs"),  # D8, case 297
    (["benchmark", "--models", "extratrees", "--epochs", "0"], "epochs"),  # shown as "model default"
], ids=["train --epochs 0", "train --epochs -1", "train --max-rows -5", "benchmark --epochs -1",
        "benchmark --epochs 0"])
def test_command_line_numbers_reach_the_checks(small_flows, tmp_path, capsys, argv, key):
    """The options, not only the config keys they stand for: refused in one line before any data is read."""
    from flowsentinel.cli import main

    command, *rest = argv
    where = ["--model-dir", str(tmp_path / "m"), "--no-reference"] if command == "train" else \
        ["--out-dir", str(tmp_path / "b"), "--no-progress"]
    assert main([command, "--data", str(small_flows), *where, *rest]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and key in lines[0] and "Traceback" not in err
    assert not (tmp_path / "m").exists() and not (tmp_path / "b").exists()
