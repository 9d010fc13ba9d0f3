"""Saving and loading models as self-contained directories, without pickle.

A model directory holds:

* ``manifest.json``: format version, package and library versions, the
  estimator and its parameters, the network architecture, schema, input
  columns, class names, threshold, metrics and a hash of the training data;
* ``weights.safetensors``: the network weights in the canonical layout;
* ``preprocessing.json``: the fitted feature pipeline, as data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelLoadError
from .features import FeatureConfig, FeaturePipeline

__all__ = ["ModelLoadError", "save_model", "load_model", "read_manifest", "file_sha256", "FORMAT", "FORMAT_VERSION"]

log = logging.getLogger(__name__)

FORMAT = "flowsentinel-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
PREPROCESSING = "preprocessing.json"


def package_version() -> str:
    try:
        return metadata.version("flowsentinel")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("flowsentinel", "torch", "numpy", "pandas", "scikit-learn", "safetensors", "onnxruntime", "mindspore"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _param_to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {"__dataclass__": type(value).__name__, **{k: _param_to_json(v) for k, v in dataclasses.asdict(value).items()}}
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _param_from_json(name: str, value: Any) -> Any:
    if isinstance(value, dict) and value.get("__dataclass__") == "FeatureConfig":
        fields = {k: v for k, v in value.items() if k != "__dataclass__"}
        fields["exclude"] = tuple(fields.get("exclude", ()))
        return FeatureConfig(**fields)
    if name in ("conv_channels", "hidden_layers", "channels") and isinstance(value, list):
        return tuple(value)
    return value


def _registry() -> dict[str, type]:
    from .models import registry

    return registry.estimator_classes()


def save_model(
    detector: Any,
    directory: str | Path,
    *,
    metrics: dict | None = None,
    training_data: dict | None = None,
    extra: dict | None = None,
) -> Path:
    """Write ``detector`` (fitted) to ``directory``; returns the directory."""
    from safetensors.numpy import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    detector._check_fitted()
    params = {k: _param_to_json(v) for k, v in detector.get_params(deep=False).items()}
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
        # A backend's detector (e.g. MindSpore's) saves as the estimator it mirrors, whose
        # parameters and canonical weights it shares, so that either backend loads it.
        "estimator": getattr(detector, "canonical_estimator", type(detector).__name__),
        "kind": getattr(detector, "kind", "supervised"),
        "backend": getattr(detector, "backend", "torch"),
        "params": params,
        "schema": detector.features_.schema_,
        "input_columns": list(detector.features_.input_columns_),
        "n_model_inputs": len(detector.features_.output_names_),
        "classes": [str(c) for c in detector.classes_],
        "task": getattr(detector, "task", None),
        "threshold": float(detector.threshold_),
        "metrics": metrics or {},
        "training_data": training_data or {},
    }
    if hasattr(detector, "module_"):
        manifest["architecture"] = {
            "network": getattr(detector, "canonical_network", type(detector.module_).__name__),
            "kwargs": detector.module_kwargs(),
            "n_inputs": len(detector.features_.output_names_),
            "n_classes": len(detector.classes_),
            "weights_layout": "torch-state-dict-v1",
        }
        manifest["training"] = {
            "history": getattr(detector, "history_", []),
            "best_epoch": getattr(detector, "best_epoch_", None),
            "class_weights": getattr(detector, "class_weights_", None),
            "fit_seconds": getattr(detector, "fit_seconds_", None),
            "n_train_flows": getattr(detector, "n_train_flows_", None),
        }
        if hasattr(detector, "canonical_state"):  # a non-torch backend converts its own weights
            state = detector.canonical_state()
        else:
            state = {
                k: v.detach().cpu().contiguous().numpy()
                for k, v in detector.module_.state_dict().items()
                if not k.endswith("num_batches_tracked")
            }
        save_file(state, str(directory / WEIGHTS), metadata={"format": FORMAT, "layout": "torch-state-dict-v1"})
    elif hasattr(detector, "save_state"):
        manifest["state"] = detector.save_state(directory)
    if extra:
        manifest.update(extra)
    (directory / PREPROCESSING).write_text(json.dumps(detector.features_.to_dict(), indent=1))
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, default=_param_to_json))
    log.info("model saved to %s", directory)
    return directory


def read_manifest(directory: str | Path) -> dict:
    directory = Path(directory)
    path = directory / MANIFEST
    if not directory.is_dir():
        raise ModelLoadError(f"{directory}: no such model directory (train one with 'flowsentinel train --model-dir {directory}')")
    if not path.exists():
        raise ModelLoadError(f"{directory}: not a flowsentinel model directory ({MANIFEST} is missing)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{path}: unreadable manifest: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise ModelLoadError(f"{path}: not a flowsentinel model manifest")
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelLoadError(
            f"{path}: model format {manifest['format_version']} is newer than this flowsentinel "
            f"({package_version()}) understands; upgrade flowsentinel"
        )
    return manifest


def load_model(directory: str | Path) -> Any:
    """Rebuild a fitted detector from a model directory (torch backend)."""
    import torch
    from safetensors.numpy import load_file

    directory = Path(directory)
    manifest = read_manifest(directory)
    classes = _registry()
    name = manifest["estimator"]
    if name not in classes:
        raise ModelLoadError(f"{directory}: unknown estimator {name!r} (saved by flowsentinel {manifest['versions'].get('flowsentinel')})")
    params = {k: _param_from_json(k, v) for k, v in manifest["params"].items()}
    detector = classes[name](**params)
    try:
        detector.features_ = FeaturePipeline.from_dict(json.loads((directory / PREPROCESSING).read_text()))
    except FileNotFoundError:
        raise ModelLoadError(f"{directory}: {PREPROCESSING} is missing") from None
    detector.n_features_in_ = detector.features_.n_features_in_
    detector.feature_names_in_ = detector.features_.feature_names_in_
    detector.classes_ = np.asarray(manifest["classes"], dtype=object)
    detector.threshold_ = float(manifest["threshold"])
    arch = manifest.get("architecture")
    if arch:
        weights_path = directory / WEIGHTS
        if not weights_path.exists():
            raise ModelLoadError(f"{directory}: {WEIGHTS} is missing")
        module = detector.build_module(arch["n_inputs"], arch["n_classes"])
        state = {k: torch.from_numpy(v) for k, v in load_file(str(weights_path)).items()}
        missing, unexpected = module.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise ModelLoadError(f"{weights_path}: weights do not fit the architecture (missing {missing}, unexpected {unexpected})")
        module.eval()
        detector.module_ = module
        training = manifest.get("training", {})
        detector.history_ = training.get("history", [])
        detector.best_epoch_ = training.get("best_epoch")
    elif hasattr(detector, "load_state"):
        detector.load_state(directory, manifest.get("state"))
    detector.manifest_ = manifest
    return detector
