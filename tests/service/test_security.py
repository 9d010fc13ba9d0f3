"""Security against a real service process: who gets in, what is refused, and that it still answers afterwards."""

from __future__ import annotations

import socket
import time

import httpx
import orjson
import pytest

from flowsentinel.service.client import _body

from .conftest import auth

ROUTES = [("POST", "/v1/score"), ("GET", "/v1/model"), ("PUT", "/v1/model"), ("GET", "/readyz"), ("GET", "/metrics"),
          ("GET", "/not-a-route")]


@pytest.fixture(scope="module")
def http(service):
    with httpx.Client(base_url=service.url, timeout=30) as client:
        yield client


def _metric(http, token, name: str, **labels) -> float:
    text = http.get("/metrics", headers=auth(token)).text
    want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.parametrize("method,path", ROUTES)
@pytest.mark.parametrize("header", [None, "Bearer fs_" + "A" * 43, "Bearer", "Basic dXNlcjpwYXNz", "fs_" + "A" * 43])
def test_no_token_or_a_wrong_one_gets_401_everywhere(http, method, path, header):
    headers = {"authorization": header} if header is not None else {}
    answer = http.request(method, path, headers=headers, content=b"[]")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.json()["error"]["kind"] in ("no_token", "bad_token")


def test_healthz_is_the_only_open_route(http):
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/healthz", headers={"authorization": "Bearer wrong"}).status_code == 200


def test_a_score_token_is_forbidden_on_the_admin_route(http, tokens, model_root):
    answer = http.put("/v1/model", headers=auth(tokens["score"]), json={"model_dir": "b"})
    assert answer.status_code == 403 and answer.json()["error"]["kind"] == "forbidden_scope"
    assert http.get("/v1/model", headers=auth(tokens["score"])).json()["model_dir"].endswith("/a")


@pytest.mark.parametrize("query", ["token={t}", "access_token={t}", "x={t}", "api_key=anything"])
def test_a_token_in_the_url_is_refused_even_when_valid(http, tokens, query):
    url = "/v1/model?" + query.format(t=tokens["admin"])
    for headers in ({}, auth(tokens["admin"])):
        answer = http.get(url, headers=headers)
        assert answer.status_code == 400 and answer.json()["error"]["kind"] == "token_in_url"
    assert http.get("/healthz?token=" + tokens["admin"]).status_code == 400


@pytest.mark.parametrize("given", ["../a", "/etc", "a/../../a", "link-out", "/", "."])
def test_model_paths_outside_the_root_are_refused(http, tokens, model_root, tmp_path_factory, given):
    outside = tmp_path_factory.mktemp("outside")
    link = model_root / "link-out"
    if not link.exists():
        link.symlink_to(outside, target_is_directory=True)
    answer = http.put("/v1/model", headers=auth(tokens["admin"]), json={"model_dir": given})
    assert answer.status_code == 403 and answer.json()["error"]["kind"] == "model_path"


def test_a_missing_model_folder_inside_the_root_is_404(http, tokens):
    answer = http.put("/v1/model", headers=auth(tokens["admin"]), json={"model_dir": "no-such-model"})
    assert answer.status_code == 404


def test_oversized_bodies_get_413_declared_or_streamed(http, tokens):
    big = b"[" + b'{"IN_BYTES": 1},' * 70_000 + b'{"IN_BYTES": 1}]'
    assert len(big) > 1024 * 1024
    answer = http.post("/v1/score", headers={**auth(tokens["score"]), "content-type": "application/json"}, content=big)
    assert answer.status_code == 413 and answer.json()["error"]["kind"] == "body_too_large"

    def chunks():
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]

    answer = http.post("/v1/score", headers={**auth(tokens["score"]), "content-type": "application/json"},
                       content=chunks())
    assert answer.status_code == 413


def test_too_many_flows_get_413(http, tokens, flows):
    body, media = _body(flows.iloc[:501], "arrow")
    answer = http.post("/v1/score", headers={**auth(tokens["score"]), "content-type": media}, content=body)
    assert answer.status_code == 413 and answer.json()["error"]["kind"] == "too_many_flows"


def test_deep_or_nested_json_is_a_400_not_a_crash(http, tokens):
    headers = {**auth(tokens["score"]), "content-type": "application/json"}
    deep = b"[" * 200_000 + b"]" * 200_000
    answer = http.post("/v1/score", headers=headers, content=deep)
    assert answer.status_code == 400 and answer.json()["error"]["kind"] == "bad_body"
    nested = orjson.dumps([{"IN_BYTES": {"a": [{"b": 1}]}}])
    answer = http.post("/v1/score", headers=headers, content=nested)
    assert answer.status_code == 400 and answer.json()["error"]["column"] == "IN_BYTES"


def _connect(service) -> socket.socket:
    return socket.create_connection((service.host, service.port), timeout=10)


def _read_all(sock: socket.socket, limit: float = 10.0) -> bytes:
    sock.settimeout(limit)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def test_a_slow_body_gets_408(service, tokens):
    with _connect(service) as sock:
        head = (f"POST /v1/score HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {tokens['score']}\r\n"
                "content-type: application/json\r\ncontent-length: 1000\r\n\r\n[")
        sock.sendall(head.encode())
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"body_timeout" in answer


def test_a_slow_request_head_is_cut_off(service):
    with _connect(service) as sock:
        sock.sendall(b"POST /v1/score HTTP/1.1\r\nhost: x\r\n")
        closed = False
        for _ in range(20):  # a byte every half second for at most 10 s, never finishing the head
            time.sleep(0.5)
            if _readable(sock):
                # The server closes with the client's unread bytes pending, so
                # the kernel may answer with a reset rather than an orderly end.
                try:
                    closed = sock.recv(1) == b""
                except ConnectionResetError:
                    closed = True
                break
            try:
                sock.sendall(b"x")
            except OSError:
                closed = True
                break
    assert closed


def _readable(sock) -> bool:
    import select

    return bool(select.select([sock], [], [], 0)[0])


def test_every_refusal_is_counted_and_logged_with_the_address_never_the_token(http, service, tokens):
    before = _metric(http, tokens["score"], "flowsentinel_refusals_total", reason="token_in_url")
    http.get("/readyz?access_token=" + tokens["score"])
    assert _metric(http, tokens["score"], "flowsentinel_refusals_total", reason="token_in_url") == before + 1
    http.get("/readyz", headers={"authorization": "Bearer " + tokens["score"] + "x"})
    log = service.log()
    assert "refused GET /readyz from 127.0.0.1:" in log
    assert tokens["score"] not in log and tokens["admin"] not in log
    assert "(token 'siem')" in log  # who was refused, by name
    assert _metric(http, tokens["score"], "flowsentinel_refusals_total", reason="no_token") >= 1


def test_the_service_still_answers_after_all_that(http, tokens, flows):
    body, media = _body(flows.iloc[:20], "json")
    answer = http.post("/v1/score", headers={**auth(tokens["score"]), "content-type": media}, content=body)
    assert answer.status_code == 200 and answer.json()["n_flows"] == 20
    assert http.get("/readyz", headers=auth(tokens["score"])).json()["ready"] is True
