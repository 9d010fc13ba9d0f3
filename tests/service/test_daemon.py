"""The daemon as a process: SIGHUP reopens the alert file and rereads tokens, SIGTERM drains, TLS, rotation."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from flowsentinel.service.client import _body
from flowsentinel.service.process import ServiceProcess
from flowsentinel.service.tokens import add_token, revoke_token

from .conftest import auth, serve_args

REPO = Path(__file__).resolve().parents[2]


def _wait_for(predicate, seconds: float = 20.0) -> bool:
    for _ in range(int(seconds / 0.1)):
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _score(url: str, token: str, frame, **kw) -> httpx.Response:
    body, media = _body(frame, "json")
    return httpx.post(f"{url}/v1/score", headers={**auth(token), "content-type": media}, content=body, timeout=60, **kw)


def _read_answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """One HTTP answer from a raw socket: its head and its whole body."""
    data = b""
    for _ in range(10_000):  # bounded; each recv waits at most the socket's timeout
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            if len(body) >= length:
                return head, body
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    return data.partition(b"\r\n\r\n")[::2]


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_sighup_reopens_the_alert_file_and_rereads_the_tokens(model_a, model_root, flows, tmp_path):
    token_file = tmp_path / "tokens"
    keep, gone = add_token(token_file, "keep"), add_token(token_file, "gone")
    tokens = {"file": token_file}
    alerts = tmp_path / "alerts.jsonl"
    with ServiceProcess(serve_args(model_a, tokens, model_root, tmp_path), log_path=tmp_path / "serve.log") as svc:
        first = _score(svc.url, keep, flows.iloc[:40]).json()
        assert len(_lines(alerts)) == first["n_alerts"] > 0
        alerts.rename(tmp_path / "alerts.jsonl.1")  # what logrotate does
        revoke_token(token_file, "gone")
        svc.signal(signal.SIGHUP)
        assert _wait_for(lambda: "reopened" in svc.log() and "1 token(s) loaded" in svc.log())
        second = _score(svc.url, keep, flows.iloc[40:80]).json()
        assert _score(svc.url, gone, flows.iloc[:5]).status_code == 401
    assert svc.returncode == 0
    assert len(_lines(tmp_path / "alerts.jsonl.1")) == first["n_alerts"]
    assert len(_lines(alerts)) == second["n_alerts"]


def test_the_alert_file_rotates_by_size(model_a, model_root, tokens, flows, tmp_path):
    args = serve_args(model_a, tokens, model_root, tmp_path, "--rotate-size", "32K", "--rotate-keep", "2")
    with ServiceProcess(args, log_path=tmp_path / "serve.log") as svc:
        n_alerts = sum(_score(svc.url, tokens["score"], flows.iloc[i:i + 20]).json()["n_alerts"]
                       for i in range(0, 600, 20))
        metrics = httpx.get(f"{svc.url}/metrics", headers=auth(tokens["score"])).text
    names = sorted(p.name for p in tmp_path.glob("alerts.jsonl*"))
    assert names == ["alerts.jsonl", "alerts.jsonl.1", "alerts.jsonl.2"]
    assert all(0 < p.stat().st_size <= 32 * 1024 for p in tmp_path.glob("alerts.jsonl*"))
    kept = sum(len(_lines(p)) for p in tmp_path.glob("alerts.jsonl*"))
    assert 0 < kept <= n_alerts
    rotations = next(float(x.split()[-1]) for x in metrics.splitlines()
                     if x.startswith("flowsentinel_alert_file_rotations_total"))
    assert rotations >= 2


def test_sigterm_answers_the_request_in_progress_then_exits_0(model_a, model_root, tokens, flows, tmp_path):
    alerts = tmp_path / "alerts.jsonl"
    with ServiceProcess(serve_args(model_a, tokens, model_root, tmp_path), log_path=tmp_path / "serve.log") as svc:
        body, media = _body(flows.iloc[:300], "json")
        with socket.create_connection((svc.host, svc.port), timeout=30) as sock:
            sock.sendall((f"POST /v1/score HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {tokens['score']}\r\n"
                          f"content-type: {media}\r\ncontent-length: {len(body)}\r\n\r\n").encode() + body[:1000])
            time.sleep(0.5)
            svc.signal(signal.SIGTERM)
            assert _wait_for(lambda: "stopping: draining" in svc.log())
            sock.sendall(body[1000:])
            head, payload = _read_answer(sock)
        assert svc.proc.wait(60) == 0
    assert head.startswith(b"HTTP/1.1 200")
    got = json.loads(payload)
    assert got["n_flows"] == 300 and len(_lines(alerts)) == got["n_alerts"]
    assert "stopped in" in svc.log()


def test_busy_and_request_timeout_are_503_and_counted(model_a, model_root, tokens, flows, tmp_path):
    args = serve_args(model_a, tokens, model_root, tmp_path, "--max-concurrency", "1", "--request-timeout", "1.5",
                      "--body-timeout", "20")
    with ServiceProcess(args, log_path=tmp_path / "serve.log") as svc:
        with socket.create_connection((svc.host, svc.port), timeout=30) as held:
            # A request whose body never finishes holds the one slot ...
            held.sendall((f"POST /v1/score HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {tokens['score']}\r\n"
                          "content-type: application/json\r\ncontent-length: 100\r\n\r\n[").encode())
            time.sleep(0.3)
            busy = _score(svc.url, tokens["score"], flows.iloc[:5])
            assert busy.status_code == 503 and busy.json()["error"]["kind"] == "busy"
            assert busy.headers["retry-after"] == "1"
            assert httpx.get(f"{svc.url}/readyz", headers=auth(tokens["score"])).status_code == 200
            # ... until its deadline passes.
            held.settimeout(10)
            head, body = _read_answer(held)
        assert head.startswith(b"HTTP/1.1 503") and b"request_timeout" in body
        assert _score(svc.url, tokens["score"], flows.iloc[:5]).status_code == 200
        metrics = httpx.get(f"{svc.url}/metrics", headers=auth(tokens["score"])).text
    assert 'flowsentinel_refusals_total{reason="busy"} 1.0' in metrics
    assert 'flowsentinel_refusals_total{reason="request_timeout"} 1.0' in metrics


def test_tls_with_a_self_signed_certificate(model_a, model_root, tokens, flows, tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    args = serve_args(model_a, tokens, model_root, tmp_path, "--tls-cert", str(cert), "--tls-key", str(key))
    with ServiceProcess(args, log_path=tmp_path / "serve.log") as svc:
        assert svc.url.startswith("https://")
        answer = _score(svc.url, tokens["score"], flows.iloc[:10], verify=ssl.create_default_context(cafile=str(cert)))
        assert answer.status_code == 200 and answer.json()["n_flows"] == 10
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{svc.url}/healthz", timeout=10)  # not trusted without the certificate
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://{svc.host}:{svc.port}/healthz", timeout=10)  # no plain HTTP on the TLS port
    assert svc.returncode == 0


def _serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flowsentinel.cli", "serve", *args], capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(REPO / "src"), "PATH": ""})


def test_no_listening_beyond_loopback_without_tokens(model_a):
    run = _serve("--model-dir", str(model_a), "--host", "0.0.0.0", "--port", "9")
    assert run.returncode == 2
    assert "refusing to listen on 0.0.0.0 (beyond loopback) without tokens" in run.stderr


def test_a_port_in_use_is_one_line_and_exit_2(model_a):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        run = _serve("--model-dir", str(model_a), "--port", str(taken.getsockname()[1]))
    assert run.returncode == 2 and "cannot listen on 127.0.0.1" in run.stderr


def test_a_bad_model_is_refused_at_start(tmp_path):
    run = _serve("--model-dir", str(tmp_path / "none"))
    assert run.returncode == 2 and "no such model directory" in run.stderr
