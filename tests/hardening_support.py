"""What the hardening tests share: a small saved model, its flows, resealing a tampered manifest, device nodes.

The model is trained on generated flows (seconds), so that these tests run
wherever the shared data is absent.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def small_flows(tmp_path_factory) -> Path:
    """300 generated flows as a CSV with labels (as the NF files have them)."""
    from flowsentinel.synthetic import generate_flows

    out = tmp_path_factory.mktemp("hardening-flows") / "flows.csv"
    generate_flows(300, random_state=5).to_csv(out, index=False)
    return out


@pytest.fixture(scope="session")
def small_model(tmp_path_factory) -> Path:
    """A CNN-BiLSTM trained for one epoch on generated flows and saved (with its ONNX graph)."""
    from tests.hardening_targets import small_model as build

    return build(tmp_path_factory.mktemp("hardening-model"))


def reseal(directory: Path) -> None:
    """Recompute a model directory's digests after an edit: what someone who rewrites every file can do.

    Loading then has only the fields' own checks to go by.
    """
    from flowsentinel.persistence import MANIFEST, decision_digest, file_sha256

    path = directory / MANIFEST
    manifest = json.loads(path.read_text())
    if isinstance(manifest, dict):
        if isinstance(manifest.get("files"), dict):
            for name in list(manifest["files"]):
                if isinstance(name, str) and (directory / name).is_file():
                    manifest["files"][name] = file_sha256(directory / name)
        manifest["decision_sha256"] = decision_digest(manifest)
    path.write_text(json.dumps(manifest))


def device_node(folder: Path, name: str, minor: int) -> Path | None:
    """A private character device of the memory driver (major 1: 3 null, 7 full), or ``None`` without root.

    Tests write to these copies, never to ``/dev/null`` or ``/dev/full`` themselves: a regression that
    replaced its output by rename would otherwise replace a node of the system.
    """
    path = folder / name
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    except (PermissionError, OSError):
        return None
    return path
