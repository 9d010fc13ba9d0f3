"""``serve --collect``: flows from a real exporter (softflowd) scored by the service."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from flowsentinel.service.process import ServiceProcess
from tests.service.conftest import auth, serve_args


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def exporter_model(tmp_path_factory):
    from flowsentinel.config import load_config
    from flowsentinel.models.deep import cnn_bilstm
    from flowsentinel.persistence import save_model
    from flowsentinel.synthetic import generate_flows
    from tests.collector.conftest import REPO

    features = load_config(str(REPO / "configs" / "exporter.toml"), []).features
    root = tmp_path_factory.mktemp("exporter-models")
    save_model(cnn_bilstm(max_epochs=1, verbose=False, feature_config=features).fit(generate_flows(800, random_state=4)),
               root / "m")
    return root


def test_flows_exported_by_softflowd_are_scored_by_the_service(exporter_model, tokens, pcaps, tmp_path):
    from flowsentinel.collector import Collector
    from flowsentinel.collector.peers import EXPORTS, send_datagrams, softflowd_export
    from tests.collector.conftest import needs

    needs("softflowd")
    export = softflowd_export(pcaps / "ppa" / "ppa1e_portscan.pcap", EXPORTS["v9"])
    expected = sum(len(f) for f in Collector().collect([(d, "127.0.0.1") for d in export.datagrams]))
    port = _free_udp_port()
    args = serve_args(exporter_model / "m", tokens, exporter_model, tmp_path, "--collect", f"127.0.0.1:{port}")
    with ServiceProcess(args, log_path=tmp_path / "serve.log") as svc:
        send_datagrams(export.datagrams, ("127.0.0.1", port))
        deadline, scored = time.monotonic() + 30, 0.0
        while time.monotonic() < deadline:
            metrics = httpx.get(f"{svc.url}/metrics", headers=auth(tokens["score"])).text
            scored = sum(float(x.split()[-1]) for x in metrics.splitlines()
                         if x.startswith('flowsentinel_flows_scored_total{source="collector"}'))
            if scored >= expected:
                break
            time.sleep(0.3)
        # One SIGTERM, then wait for the drain (leaving the block would send a second one while draining).
        svc.stop()
    assert scored == expected > 0
    assert svc.returncode == 0
    # Host context runs on the collector's flows as in `flowsentinel collect`: the scan's 29 probes of
    # one host are all alerts, whatever the model makes of each alone.
    alerts = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert len(alerts) == expected == 29
    assert {a["dest_ip"] for a in alerts} == {"10.100.18.12"}
