"""Fuzz targets over raw bytes, shared by ``scripts/fuzz.py`` (long runs) and the replay of what they found.

Each target takes one input (bytes) and a scratch folder, runs one parser
on it and raises when a promise is broken (an exception other than the
parser's user error, a message that is not one line naming the file, rows
or packets unaccounted for, a changed decision loaded silently). Inputs that
break one are kept in ``tests/fuzz_regressions/`` as ``TARGET-<sha1>``;
``tests/test_hardening_regressions.py`` replays every file there.

=============  =====================================================================
target         input
=============  =====================================================================
``config``     a TOML config file's bytes
``manifest``   one flag byte (bit 0: reseal the digests) and a ``manifest.json``
``capture``    a capture file's bytes (pcap or pcapng)
``reader``     a flow file, as ``tests/fuzz/harness.py`` builds it from bytes
``collector``  one NetFlow/IPFIX datagram
=============  =====================================================================
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

TARGETS = ("config", "manifest", "capture", "reader", "collector")


def _clean(folder: Path) -> None:
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def check_config(data: bytes, folder: Path) -> None:
    from flowsentinel.config import build_detector, load_config
    from flowsentinel.errors import ConfigError

    path = folder / "c.toml"
    path.write_bytes(data)
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        assert str(exc).strip(), "an empty ConfigError"
        return
    build_detector(cfg).check_params()


def check_manifest(data: bytes, folder: Path, model: Path) -> None:
    """``model``: a saved model whose other files the manifest is tried with."""
    from flowsentinel.errors import ModelLoadError
    from flowsentinel.persistence import DECISION_FIELDS, MANIFEST, load_model
    from tests.hardening_support import reseal

    sealed = bool(data[:1]) and data[0] & 1
    d = folder / "m"
    shutil.copytree(model, d)
    (d / MANIFEST).write_bytes(data[1:])
    if sealed:
        try:
            reseal(d)
        except (ValueError, UnicodeDecodeError, RecursionError):
            pass  # not JSON: nothing to reseal
    try:
        load_model(d, engine="auto")
    except ModelLoadError as exc:
        text = str(exc).strip()
        assert text and "\n" not in text and str(d) in text, text
        return
    if not sealed:
        original = json.loads((model / MANIFEST).read_text())
        loaded = json.loads(data[1:])
        changed = [k for k in DECISION_FIELDS if loaded.get(k) != original.get(k)]
        assert not changed, f"an unsealed manifest with changed decision fields loaded: {changed}"


def check_capture(data: bytes, folder: Path) -> None:
    from flowsentinel.errors import MeterError
    from flowsentinel.metering import meter_capture

    path = folder / "c.pcap"
    path.write_bytes(data)
    try:
        run = meter_capture(path)
        rows = sum(len(frame) for frame in run)
    except MeterError as exc:
        text = str(exc).strip()
        assert text and "\n" not in text and str(path) in text, text
        return
    s = run.stats
    assert s.packets_seen == s.packets_metered + s.packets_ignored, s
    assert rows == s.flows <= s.packets_metered, s


def check_reader(data: bytes, folder: Path) -> None:
    from tests.fuzz.harness import check_bytes

    check_bytes(data, folder)


def check_collector(data: bytes, folder: Path) -> None:
    from flowsentinel.collector import Collector, CollectorConfig

    c = Collector(CollectorConfig(max_held_sets=16))
    frames = c.collect([(data, "192.0.2.1")])
    n = c.counters
    assert n.packets == 1 == n.by_version[5] + n.by_version[9] + n.by_version[10] + n.unknown_version + (len(data) < 2)
    assert sum(len(f) for f in frames) == n.flows
    for frame in frames:
        assert not frame.isna().any().any()


def run_target(name: str, data: bytes, folder: Path, *, model: Path | None = None) -> None:
    """One input through one target, in an emptied ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    _clean(folder)
    if name == "manifest":
        if model is None:
            raise ValueError("the manifest target needs a model directory")
        check_manifest(data, folder, model)
    else:
        {"config": check_config, "capture": check_capture, "reader": check_reader,
         "collector": check_collector}[name](data, folder)


def seeds(name: str, folder: Path, *, model: Path | None = None) -> list[bytes]:
    """Valid inputs to start from."""
    from flowsentinel.paths import data_dir

    folder.mkdir(parents=True, exist_ok=True)
    if name == "config":
        return [b"", b"[run]\nseed = 3\nprotocol = \"dedup\"\n",
                b"[model]\nmax_epochs = 2\ndropout = 0.2\nconv_channels = [8, 16]\nnetwork = \"cnn-bilstm\"\n",
                b"[features]\ninclude_ports = true\nexclude = [\"IN_BYTES\"]\n[run]\nfractions = [0.6, 0.2, 0.2]\n"]
    if name == "manifest":
        text = (model / "manifest.json").read_bytes()
        return [b"\x00" + text, b"\x01" + text]
    if name == "capture":
        from tests.test_hardening_captures import SHARED, _generated

        out = [_generated(folder)]
        out += [(data_dir() / "pcaps" / rel).read_bytes() for rel in SHARED if (data_dir() / "pcaps" / rel).is_file()]
        return out
    if name == "reader":
        from tests.fuzz.harness import ROW

        return [bytes([mode]) + (ROW + b"\n") * 8 for mode in (0, 1, 2)]
    if name == "collector":
        from tests.collector.test_fuzz import SEEDS

        return list(SEEDS)
    raise ValueError(f"unknown target {name!r}; known: {', '.join(TARGETS)}")


def small_model(folder: Path) -> Path:
    """The hardening tests' small model (``tests/hardening_support.py``), saved under ``folder``."""
    from flowsentinel.models.deep import cnn_bilstm
    from flowsentinel.persistence import save_model
    from flowsentinel.synthetic import generate_flows

    det = cnn_bilstm(max_epochs=1, verbose=False, random_state=0, conv_channels=(4, 4), lstm_hidden=4,
                     num_threads=1)
    det.fit(generate_flows(1200, random_state=4, balance=0.3))
    return save_model(det, folder / "model")
