"""Fixtures for the service tests: two small trained models under one model root, flows, tokens, a live service."""

from __future__ import annotations

from pathlib import Path

import pytest

for _module in ("starlette", "uvicorn", "httpx", "orjson", "prometheus_client", "onnxruntime"):
    pytest.importorskip(_module, reason=f"the service tests need {_module}: pip install 'flowsentinel[service,fast]'")

from flowsentinel.schema import ATTACK_COLUMN, DATASET_COLUMN, LABEL_COLUMN  # noqa: E402
from flowsentinel.service.process import ServiceProcess  # noqa: E402
from flowsentinel.service.tokens import add_token  # noqa: E402

SAMPLE = "nf-bot-iot-v2/NF-BoT-IoT-v2-sample.csv.gz"


def _train(directory: Path, seed: int) -> Path:
    from flowsentinel.models.deep import cnn_bilstm
    from flowsentinel.persistence import save_model
    from flowsentinel.synthetic import generate_flows

    det = cnn_bilstm(max_epochs=1, verbose=False, random_state=seed).fit(generate_flows(3000, random_state=seed))
    save_model(det, directory)
    return directory


@pytest.fixture(scope="session")
def model_root(tmp_path_factory) -> Path:
    """A model root holding two models, ``a`` and ``b``, trained from different seeds."""
    root = tmp_path_factory.mktemp("models")
    _train(root / "a", 0)
    _train(root / "b", 1)
    return root


@pytest.fixture(scope="session")
def model_a(model_root) -> Path:
    return model_root / "a"


@pytest.fixture(scope="session")
def flows(tmp_path_factory):
    """Real NF-BoT-IoT-v2 flows (the first 2,000 of the sample) without labels; synthetic ones where it is absent."""
    from flowsentinel.io.readers import ReadConfig, read_flows
    from flowsentinel.paths import data_file

    path = data_file(SAMPLE)
    if path is None:
        from flowsentinel.synthetic import generate_flows

        frame = generate_flows(2000, random_state=3)
    else:
        frame, _ = read_flows(path, ReadConfig(rejects_dir=tmp_path_factory.mktemp("rejects")), max_rows=2000)
    return frame.drop(columns=[c for c in (LABEL_COLUMN, ATTACK_COLUMN, DATASET_COLUMN) if c in frame.columns])


@pytest.fixture(scope="session")
def tokens(tmp_path_factory) -> dict:
    """A token file with an admin and a score token."""
    path = tmp_path_factory.mktemp("tokens") / "tokens"
    return {"file": path, "admin": add_token(path, "ops", "admin"), "score": add_token(path, "siem", "score")}


def serve_args(model_dir, tokens, model_root, tmp: Path, *extra: str) -> list[str]:
    return ["--model-dir", str(model_dir), "--token-file", str(tokens["file"]), "--model-root", str(model_root),
            "--alerts", str(tmp / "alerts.jsonl"), *extra]


@pytest.fixture(scope="session")
def service(model_a, model_root, tokens, tmp_path_factory):
    """A service process with small limits, shared by tests that do not change its model."""
    tmp = tmp_path_factory.mktemp("service")
    svc = ServiceProcess(serve_args(model_a, tokens, model_root, tmp, "--max-body", "1M", "--max-flows", "500",
                                    "--body-timeout", "1.5", "--header-timeout", "1.5", "--drain-timeout", "10"),
                         log_path=tmp / "serve.log")
    svc.start()
    svc.alerts = tmp / "alerts.jsonl"
    yield svc
    svc.stop()


def auth(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}
