"""The API against a real service process: verdicts in every body format, errors that say where, the client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest

from flowsentinel.errors import ServiceError
from flowsentinel.service.client import ScoreClient, _body

from .conftest import auth
from .test_scorer import _in_process

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def http(service):
    with httpx.Client(base_url=service.url, timeout=60) as client:
        yield client


def _post(http, token, body, media):
    return http.post("/v1/score", headers={**auth(token), "content-type": media}, content=body)


@pytest.mark.parametrize("fmt", ["json", "csv", "arrow", "lines"])
def test_one_verdict_per_flow_in_order_as_in_process(http, tokens, flows, model_a, fmt):
    part = flows.iloc[100:400]
    if fmt == "lines":
        body, media = b"\n".join(orjson.dumps(r) for r in part.to_dict(orient="records")), "application/x-ndjson"
    else:
        body, media = _body(part, fmt)
    answer = _post(http, tokens["score"], body, media)
    assert answer.status_code == 200, answer.text
    got = answer.json()
    scores, classes, alerts = _in_process(model_a, part)
    verdicts = got["verdicts"]
    assert [v["row"] for v in verdicts] == list(range(1, len(part) + 1))
    np.testing.assert_allclose([v["score"] for v in verdicts], scores, atol=1e-5)
    assert [v["class"] for v in verdicts] == classes.tolist()
    assert [v["alert"] for v in verdicts] == alerts.tolist()
    assert got["n_alerts"] == int(alerts.sum())
    for v, (_, flow) in zip(verdicts, part.iterrows()):
        if v["alert"]:
            eve = v["eve"]
            assert eve["event_type"] == "alert" and eve["flowsentinel"]["class"] == v["class"]
            assert (eve["src_ip"], eve["dest_port"]) == (flow["IPV4_SRC_ADDR"], int(flow["L4_DST_PORT"]))
        else:
            assert "eve" not in v
    assert got["model"]["digest"] == http.get("/v1/model", headers=auth(tokens["score"])).json()["digest"]


def test_a_bad_value_is_a_400_naming_row_and_column(http, tokens, flows):
    part = flows.iloc[:10].copy()
    part["IN_PKTS"] = part["IN_PKTS"].astype(object)
    part.iloc[6, part.columns.get_loc("IN_PKTS")] = "many"
    answer = _post(http, tokens["score"], *_body(part, "csv"))
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["row"], error["column"], error["reason"]) == (7, "IN_PKTS", "not a number")


def test_columns_the_model_lacks_are_a_422_naming_them(http, tokens, flows):
    part = flows.iloc[:10].drop(columns=["IN_BYTES", "TCP_FLAGS"])
    answer = _post(http, tokens["score"], *_body(part, "json"))
    assert answer.status_code == 422
    assert set(answer.json()["error"]["missing"]) == {"IN_BYTES", "TCP_FLAGS"}


def test_an_unknown_media_type_is_a_415(http, tokens):
    assert _post(http, tokens["score"], b"<x/>", "application/xml").status_code == 415


def test_an_empty_batch_gets_no_verdicts(http, tokens):
    answer = _post(http, tokens["score"], b"[]", "application/json")
    assert answer.status_code == 200 and answer.json()["verdicts"] == []


def test_model_info_readiness_and_metrics(http, tokens, model_a):
    info = http.get("/v1/model", headers=auth(tokens["score"])).json()
    assert info["model_dir"] == str(model_a) and info["engine"] in ("onnx", "torch")
    assert info["manifest"]["params"]["network"] == info["name"] and len(info["digest"]) == 16
    assert http.get("/readyz", headers=auth(tokens["score"])).json()["ready"] is True
    text = http.get("/metrics", headers=auth(tokens["score"])).text
    for name in ("flowsentinel_http_requests_total", "flowsentinel_flows_scored_total", "flowsentinel_alerts_total",
                 "flowsentinel_http_request_duration_seconds_bucket", "flowsentinel_errors_total",
                 "flowsentinel_refusals_total", "flowsentinel_model_info"):
        assert name in text, name
    assert f'digest="{info["digest"]}"' in text
    assert 'flowsentinel_errors_total{kind="bad_row"}' in text


def test_alerts_go_to_the_alert_file_too(http, service, tokens, flows):
    before = len(service.alerts.read_text().splitlines()) if service.alerts.exists() else 0
    got = _post(http, tokens["score"], *_body(flows.iloc[:60], "json")).json()
    lines = service.alerts.read_text().splitlines()
    assert len(lines) - before == got["n_alerts"]
    assert [json.loads(x) for x in lines[before:]] == [v["eve"] for v in got["verdicts"] if v["alert"]]


def test_the_python_client(service, tokens, flows):
    with ScoreClient(service.url, token=tokens["score"]) as client:
        verdicts = client.score(flows.iloc[:30])
        assert len(verdicts) == 30 and list(verdicts.columns) == ["row", "score", "class", "alert", "eve"]
        cols = ["row", "score", "class", "alert"]
        assert verdicts[cols].equals(client.score(flows.iloc[:30], fmt="json")[cols])
        assert client.ready() and client.model()["name"] == verdicts.attrs["model"]["name"]
        with pytest.raises(ServiceError, match="403 forbidden_scope"):
            client.swap("b")
    with ScoreClient(service.url, token="fs_" + "B" * 43) as client, pytest.raises(ServiceError, match="401 bad_token"):
        client.model()


def test_score_url_command_scores_a_flow_file(service, tokens, flows, tmp_path):
    part = flows.iloc[:250]
    src = tmp_path / "flows.csv"
    part.to_csv(src, index=False)
    (tmp_path / "token").write_text(tokens["score"] + "\n")
    out = tmp_path / "verdicts.jsonl"
    run = subprocess.run([sys.executable, "-m", "flowsentinel.cli", "score", str(src), "--url", service.url,
                          "--token-file", str(tmp_path / "token"), "--batch-flows", "100", "-o", str(out)],
                         capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(REPO / "src"), "PATH": ""})
    assert run.returncode == 0, run.stderr
    verdicts = [json.loads(x) for x in out.read_text().splitlines()]
    assert [v["row"] for v in verdicts] == list(range(2, 252))  # the file's lines
    assert "250 flows scored" in run.stderr
    assert all(v["eve"]["flowsentinel"]["row"] == v["row"] for v in verdicts if v["alert"])
    bad = subprocess.run([sys.executable, "-m", "flowsentinel.cli", "score", str(src), "--url", service.url],
                         capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(REPO / "src"), "PATH": ""})
    assert bad.returncode == 2 and "401 no_token" in bad.stderr
