"""Model directories: self-contained, pickle-free, and checked before they are trusted.

A model directory holds:

* ``manifest.json``: format version, package and library versions, the
  estimator and its parameters, schema, input columns, class names,
  threshold, the detector's own state fields (architecture, raw thresholds,
  training history), metrics and a hash of the training data; and the
  **digests** that make the directory tamper-evident: the SHA-256 of every
  other file, and of the manifest's own decision fields (everything that
  changes a verdict: estimator, parameters, schema, columns, classes,
  threshold, state, file digests);
* ``weights.safetensors``: the detector's arrays (network weights in the
  canonical layout, tree node tables...);
* ``preprocessing.json``: the fitted feature pipeline, as data;
* ``model.onnx`` (deep models): the network exported for ONNX Runtime, with
  a **probe** in the manifest: the class probabilities that the saved
  weights give on a fixed pseudo-random batch, so that the graph is checked
  against the weights it claims to be, by running it.

The detector gives and takes its state (:meth:`~flowsentinel.models.base.BaseDetector.get_state`,
:meth:`~flowsentinel.models.base.BaseDetector.from_state`); this module only
writes files, the manifest and the digests, and checks them on loading:
any mismatch is refused with one line naming the file. Directories are
written under a temporary name and renamed into place, so an interrupted
save never leaves something that looks complete.

What the digests do not do: someone who can rewrite every file can rewrite
the manifest's digests too. They catch damage, partial edits and mixed-up
files; keep model directories where only their owner can write.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, DataError, ModelIntegrityError, ModelLoadError
from .features import FeatureConfig, FeaturePipeline

__all__ = [
    "ModelLoadError",
    "ModelIntegrityError",
    "save_model",
    "load_model",
    "read_manifest",
    "file_sha256",
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "WEIGHTS",
    "PREPROCESSING",
    "ONNX_FILE",
]

log = logging.getLogger(__name__)

FORMAT = "flowsentinel-model"
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
PREPROCESSING = "preprocessing.json"
ONNX_FILE = "model.onnx"
MODEL_FILES = (MANIFEST, WEIGHTS, PREPROCESSING, ONNX_FILE)
#: Manifest fields that change a verdict: covered by ``decision_sha256``.
DECISION_FIELDS = ("estimator", "kind", "params", "schema", "input_columns", "n_model_inputs", "classes", "task",
                   "threshold", "state", "files", "probe")
#: Rows of the probe batch and the tolerance an engine must meet on it.
PROBE_ROWS = 16
PROBE_TOLERANCE = 1e-4


def library_versions() -> dict[str, str]:
    from importlib import metadata  # here, not at the top: its imports cost scoring's start-up 0.1 s

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


def _bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {"__dataclass__": type(value).__name__, **{k: _to_json(v) for k, v in dataclasses.asdict(value).items()}}
    if isinstance(value, (tuple, list)):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _param_from_json(value: Any) -> Any:
    if isinstance(value, dict) and value.get("__dataclass__") == "FeatureConfig":
        fields = {k: v for k, v in value.items() if k != "__dataclass__"}
        fields["exclude"] = tuple(fields.get("exclude", ()))
        return FeatureConfig(**fields)
    if isinstance(value, list):
        return tuple(_param_from_json(v) for v in value)
    if isinstance(value, dict):
        return {k: _param_from_json(v) for k, v in value.items()}
    return value


def decision_digest(manifest: dict[str, Any]) -> str:
    """SHA-256 over the manifest's decision fields, in a canonical JSON form."""
    fields = {k: manifest.get(k) for k in DECISION_FIELDS}
    return _bytes_sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode())


def _probe_batch(input_shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(0).normal(0.0, 1.5, size=(PROBE_ROWS, *input_shape)).astype(np.float32)


# ---- saving ------------------------------------------------------------------------------------


def save_model(
    detector: Any,
    directory: str | Path,
    *,
    metrics: dict | None = None,
    training_data: dict | None = None,
    extra: dict | None = None,
    onnx: bool = True,
) -> Path:
    """Write a fitted ``detector`` to ``directory`` (replacing a model there); returns the directory.

    Deep models also get ``model.onnx`` (when ``onnx`` and the ``onnx``
    package is installed). The directory appears complete or not at all.
    """
    from safetensors.numpy import save as safetensors_bytes

    directory = Path(directory)
    state = detector.get_state()
    files: dict[str, bytes] = {
        WEIGHTS: safetensors_bytes({k: np.ascontiguousarray(v) for k, v in state.arrays.items()},
                                   metadata={"format": FORMAT}),
        PREPROCESSING: json.dumps(detector.features_.to_dict(), indent=1).encode(),
    }
    probe = None
    graph = _onnx_graph(detector) if onnx else None
    if graph is not None:
        files[ONNX_FILE] = graph
    if hasattr(detector, "engine") and hasattr(detector, "input_shape"):
        proba = detector.engine(_probe_batch(detector.input_shape))
        probe = {"rows": PROBE_ROWS, "seed": 0, "proba": np.asarray(proba, np.float64).round(7).tolist()}
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
        "estimator": type(detector).__name__,
        "kind": detector.kind,
        "backend": getattr(detector, "backend", None),
        "params": _to_json(detector.saved_params()),
        "schema": detector.features_.schema_,
        "input_columns": list(detector.features_.input_columns_),
        "n_model_inputs": len(detector.features_.output_names_),
        "classes": [str(c) for c in detector.classes_],
        "task": getattr(detector, "task", None),
        "threshold": float(detector.threshold_),
        "state": _to_json(state.fields),
        "probe": probe,
        "files": {name: _bytes_sha256(data) for name, data in files.items()},
        "metrics": _to_json(metrics or {}),
        "training_data": _to_json(training_data or {}),
    }
    for key, value in (extra or {}).items():
        if key in manifest:
            raise ValueError(f"extra manifest key {key!r} would replace a field of the format")
        manifest[key] = _to_json(value)
    manifest["decision_sha256"] = decision_digest(manifest)
    files[MANIFEST] = json.dumps(manifest, indent=2).encode()
    _write_directory(directory, files)
    log.info("model saved to %s", directory)
    return directory


def _onnx_graph(detector) -> bytes | None:
    if not hasattr(detector, "onnx_graph"):
        return None
    try:
        import onnx  # noqa: F401
    except ImportError:
        log.info("no %s written: the onnx package is not installed (pip install 'flowsentinel[fast]')", ONNX_FILE)
        return None
    return detector.onnx_graph()


def _write_directory(directory: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` into a fresh folder beside ``directory``, then swap it into place.

    Entries of an existing directory that are not model files (a report
    folder inside it) move over to the new one; model files never do.
    """
    from .io.outputs import check_output_dir, output_error

    check_output_dir(directory)
    parent = directory.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".partial", dir=parent))
    except OSError as exc:
        err = output_error(parent, exc)
        if err is None:
            raise
        raise err from None
    try:
        for name, data in files.items():
            with open(tmp / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o755)
        if directory.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".old", dir=parent))
            os.rmdir(old)
            os.replace(directory, old)
            os.replace(tmp, directory)
            for entry in old.iterdir():
                if entry.name not in MODEL_FILES and not (directory / entry.name).exists():
                    os.replace(entry, directory / entry.name)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        err = output_error(directory, exc)
        if err is None:
            raise
        raise err from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ---- loading -----------------------------------------------------------------------------------


def read_manifest(directory: str | Path) -> dict:
    """The manifest of a model directory, checked for format and version (not yet for digests)."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not directory.is_dir():
        hint = f" (train one with 'flowsentinel train --model-dir {directory}')" if not directory.exists() else ""
        raise ModelLoadError(f"{directory}: no such model directory{hint}")
    if not path.is_file():
        raise ModelLoadError(f"{directory}: not a flowsentinel model directory ({MANIFEST} is missing)")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path}: unreadable manifest: {exc}") from None
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read the manifest: {exc.strerror or exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelLoadError(f"{path}: not a flowsentinel model manifest")
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ModelLoadError(f"{path}: format_version must be a whole number, got {version!r}")
    if version > FORMAT_VERSION:
        from . import __version__

        raise ModelLoadError(
            f"{path}: model format {version} is newer than this flowsentinel ({__version__}) "
            f"understands (format {FORMAT_VERSION}); upgrade flowsentinel (pip install -U flowsentinel)"
        )
    if version < FORMAT_VERSION:
        raise ModelLoadError(
            f"{path}: model format {version} was written by an earlier flowsentinel and carries no digests "
            "to check it by; train it again with this version (its manifest's 'config' holds the settings)"
        )
    return manifest


def verify_model(directory: str | Path, manifest: dict | None = None) -> dict[str, bytes]:
    """Check a directory's digests; returns the verified file contents (manifest excluded)."""
    directory = Path(directory)
    manifest = read_manifest(directory) if manifest is None else manifest
    recorded = manifest.get("decision_sha256")
    if recorded != decision_digest(manifest):
        raise ModelIntegrityError(
            f"{directory / MANIFEST}: its decision fields (classes, threshold, parameters, columns, state or "
            "file digests) do not match its digest: the manifest was edited or damaged; restore the model"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or WEIGHTS not in files or PREPROCESSING not in files:
        raise ModelIntegrityError(f"{directory / MANIFEST}: lists no file digests; restore the model")
    contents: dict[str, bytes] = {}
    for name, digest in files.items():
        if name != Path(name).name:
            raise ModelIntegrityError(f"{directory / MANIFEST}: file name {name!r} points outside the directory")
        path = directory / name
        if not path.is_file():
            raise ModelLoadError(f"{directory}: {name} is missing")
        data = path.read_bytes()
        if _bytes_sha256(data) != digest:
            raise ModelIntegrityError(f"{path}: content does not match the digest in {MANIFEST}: "
                                      "the file was changed or damaged; restore the model")
        contents[name] = data
    return contents


def load_model(directory: str | Path, *, engine: str | None = None, inference=None, backend: str | None = None) -> Any:
    """Rebuild a fitted detector from a model directory, after checking every digest.

    Args:
        engine: for deep models, ``auto``, ``onnx`` or ``torch`` (see
            :meth:`~flowsentinel.models.deep.DeepDetector.use_engine`);
            ``None`` leaves the training backend's network, built on first use.
        inference: an :class:`~flowsentinel.models.engines.InferenceConfig`
            (threads, batch size); its ``engine`` is used when ``engine`` is not given.
        backend: run a deep model in this framework (``mindspore``) instead of
            the one it was trained in: the weights layout is shared.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load as safetensors_load

    from .models.base import DetectorState
    from .models.registry import ESTIMATORS, detector_class

    directory = Path(directory)
    manifest = read_manifest(directory)
    contents = verify_model(directory, manifest)
    _check_fields(directory / MANIFEST, manifest)
    name = manifest.get("estimator")
    if name not in ESTIMATORS:
        raise ModelLoadError(f"{directory}: unknown estimator {name!r} (saved by flowsentinel "
                             f"{manifest.get('versions', {}).get('flowsentinel')})")
    try:
        features = FeaturePipeline.from_dict(json.loads(contents[PREPROCESSING]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{directory / PREPROCESSING}: not a fitted feature pipeline ({exc})") from None
    try:
        arrays = safetensors_load(contents[WEIGHTS])
    except (SafetensorError, ValueError) as exc:
        raise ModelLoadError(f"{directory / WEIGHTS}: unreadable ({exc})") from None
    try:
        params = {k: _param_from_json(v) for k, v in dict(manifest["params"]).items()}
        if backend is not None:
            params["backend"] = backend
        classes = [str(c) for c in manifest["classes"]]
        if manifest.get("n_model_inputs") != len(features.output_names_):
            raise DataError(f"the manifest says {manifest.get('n_model_inputs')} model inputs, the preprocessing "
                            f"gives {len(features.output_names_)}")
        if list(manifest.get("input_columns", [])) != list(features.input_columns_):
            raise DataError("the manifest's input columns differ from the preprocessing's")
        detector = detector_class(name).from_state(params, features, classes, float(manifest["threshold"]),
                                                   DetectorState(arrays, manifest.get("state") or {}))
    except KeyError as exc:
        raise ModelLoadError(f"{directory}: the model's files do not fit together (no {exc} where one is needed); "
                             "restore the model") from None
    except (DataError, ValueError, TypeError, IndexError, AttributeError, RuntimeError) as exc:
        # from_state reshapes arrays into the network the parameters describe; a value that does not fit
        # fails in torch or numpy with their own types.
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"{directory}: the model's files do not fit together ({text}); restore the model") \
            from None
    detector.manifest_ = manifest
    chosen = None
    if hasattr(detector, "use_engine") and (engine is not None or inference is not None or backend is not None):
        from .models.engines import InferenceConfig

        config = inference or InferenceConfig()
        if engine is not None:
            config = dataclasses.replace(config, engine=engine)
        if backend is not None and backend != "torch":
            # Another framework's refusal of a sound model (a network it lacks) says what to do instead;
            # asked before the weights go in, where any failure means a damaged model.
            detector.check_backend()
        try:
            if backend is not None and backend != "torch":
                chosen = detector.use_backend_engine(config)
            else:
                chosen = detector.use_engine(config, graph=contents.get(ONNX_FILE))
        except (RuntimeError, ValueError, TypeError, KeyError, IndexError) as exc:
            # The network is built from the parameters and filled with the saved weights here; weights of
            # another shape fail inside torch (found by fuzzing a sealed manifest's conv_channels).
            text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"{directory / WEIGHTS}: the weights do not fit the network the manifest's "
                                 f"parameters describe ({text}); restore the model") from None
        _check_probe(directory, manifest, detector, chosen)
    if chosen != "onnx":
        # The saved parameters pass the checks a config's do. Under ONNX Runtime the graph, checked by the
        # probe, is what runs, and checking the network's settings would import torch: not done there.
        try:
            detector.check_params()
        except ConfigError as exc:
            raise ModelLoadError(f"{directory / MANIFEST}: a saved parameter is invalid ({exc}); "
                                 "restore the model") from None
    return detector


def _check_fields(path: Path, manifest: dict) -> None:
    """The decision fields have the types loading relies on; a wrong one is named (the digest may match:
    a manifest written by hand or by another tool)."""
    def bad(field: str, want: str) -> ModelLoadError:
        return ModelLoadError(f"{path}: field {field!r} must be {want}, got {manifest.get(field)!r:.80}; "
                              "restore the model")

    for field in ("estimator", "schema"):
        if not isinstance(manifest.get(field), str):
            raise bad(field, "a string")
    if not isinstance(manifest.get("params"), dict):
        raise bad("params", "a table of parameters")
    classes = manifest.get("classes")
    if (not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes)
            or len(set(classes)) != len(classes)):
        raise bad("classes", "a list of distinct class names")
    columns = manifest.get("input_columns")
    if not isinstance(columns, list) or not columns or not all(isinstance(c, str) for c in columns):
        raise bad("input_columns", "a list of column names")
    n_inputs = manifest.get("n_model_inputs")
    if isinstance(n_inputs, bool) or not isinstance(n_inputs, int) or n_inputs < 1:
        raise bad("n_model_inputs", "a whole number >= 1")
    threshold = manifest.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not np.isfinite(threshold):
        raise bad("threshold", "a finite number")
    if manifest.get("state") is not None and not isinstance(manifest.get("state"), dict):
        raise bad("state", "a table")
    probe = manifest.get("probe")
    if probe is not None and not (isinstance(probe, dict) and isinstance(probe.get("proba"), list)):
        raise bad("probe", "a table with the probe's probabilities")


def _check_probe(directory: Path, manifest: dict, detector, engine_name: str) -> None:
    """The chosen engine must give the probabilities the saved weights gave on the probe batch."""
    probe = manifest.get("probe")
    if not probe:
        return
    try:
        expected = np.asarray(probe["proba"], np.float64)
    except (ValueError, TypeError):
        raise ModelLoadError(f"{directory / MANIFEST}: field 'probe' holds no table of probabilities; "
                             "restore the model") from None
    where = ONNX_FILE if engine_name == "onnx" else WEIGHTS
    try:
        got = np.asarray(detector.engine(_probe_batch(detector.input_shape)), np.float64)
    except Exception as exc:  # a graph of another shape fails inside the engine, whatever its library raises
        raise ModelIntegrityError(f"{directory / where}: the {engine_name} engine cannot run the saved model's "
                                  f"input ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); restore the model") from None
    if got.shape != expected.shape or not np.allclose(got, expected, atol=PROBE_TOLERANCE):
        diff = float(np.abs(got - expected).max()) if got.shape == expected.shape else float("inf")
        raise ModelIntegrityError(f"{directory / where}: the {engine_name} engine does not reproduce the saved "
                                  f"model's probabilities (largest difference {diff:.3g}); restore the model")
