"""A model swap under load: no request fails, and verdicts move from the old model to the new one for good."""

from __future__ import annotations

import shutil
import threading
import time

import httpx
import pytest

from flowsentinel.service.client import _body
from flowsentinel.service.process import ServiceProcess

from .conftest import auth, serve_args

CLIENTS = 3


@pytest.fixture()
def swap_service(model_a, model_root, tokens, tmp_path):
    with ServiceProcess(serve_args(model_a, tokens, model_root, tmp_path), log_path=tmp_path / "serve.log") as svc:
        yield svc
    assert svc.returncode == 0


def _digest(url, token) -> str:
    return httpx.get(f"{url}/v1/model", headers=auth(token), timeout=30).json()["digest"]


def _hammer(url, token, payloads, stop: threading.Event, out: list, limit: int = 2000):
    with httpx.Client(base_url=url, headers=auth(token), timeout=60) as client:
        for i in range(limit):  # bounded; the event ends it long before
            if stop.is_set():
                break
            body, media = payloads[i % len(payloads)]
            answer = client.post("/v1/score", content=body, headers={"content-type": media})
            out.append((answer.status_code, answer.json()["model"]["digest"] if answer.status_code == 200 else None))


def test_swap_under_load_fails_no_request_and_switches_every_client(swap_service, tokens, flows, model_root, tmp_path):
    url = swap_service.url
    old = _digest(url, tokens["score"])
    payloads = [_body(flows.iloc[i:i + 100], "json") for i in range(0, 1000, 100)]
    stop = threading.Event()
    results = [[] for _ in range(CLIENTS)]
    threads = [threading.Thread(target=_hammer, args=(url, tokens["score"], payloads, stop, out)) for out in results]
    for t in threads:
        t.start()
    try:
        for _ in range(100):  # until every client has been answered by the old model
            if all(results):
                break
            time.sleep(0.1)
        swap = httpx.put(f"{url}/v1/model", headers=auth(tokens["admin"]), json={"model_dir": "b"}, timeout=120)
        assert swap.status_code == 200, swap.text
        new = swap.json()["new"]["digest"]
        assert swap.json()["old"]["digest"] == old != new
        counts = [len(r) for r in results]
        for _ in range(100):  # until every client has been answered a few times since
            if all(len(r) >= c + 3 for r, c in zip(results, counts)):
                break
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    for r in results:
        assert r and all(status == 200 for status, _ in r)
        digests = [d for _, d in r]
        assert digests[0] == old and digests[-1] == new
        switched = digests.index(new)
        assert set(digests[:switched]) == {old} and set(digests[switched:]) == {new}
    assert _digest(url, tokens["score"]) == new
    metrics = httpx.get(f"{url}/metrics", headers=auth(tokens["score"])).text
    assert f'digest="{new}"' in metrics and f'digest="{old}"' not in metrics


def test_a_model_that_fails_its_checks_is_refused_and_the_old_one_stays(swap_service, tokens, flows, model_root,
                                                                         model_a):
    broken = model_root / "broken"
    if not broken.exists():
        shutil.copytree(model_a, broken)
        (broken / "model.onnx").unlink()
        for p in broken.glob("*.safetensors"):
            p.write_bytes(b"\0" * 64)
    url = swap_service.url
    before = _digest(url, tokens["score"])
    answer = httpx.put(f"{url}/v1/model", headers=auth(tokens["admin"]), json={"model_dir": "broken"}, timeout=120)
    assert answer.status_code == 422 and answer.json()["error"]["kind"] == "model_refused"
    assert _digest(url, tokens["score"]) == before
    body, media = _body(flows.iloc[:10], "json")
    scored = httpx.post(f"{url}/v1/score", headers={**auth(tokens["score"]), "content-type": media}, content=body)
    assert scored.status_code == 200 and scored.json()["model"]["digest"] == before
