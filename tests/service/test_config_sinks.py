"""Settings that refuse to start an unsafe service, and the alert file's rotation and reopening."""

from __future__ import annotations

import json

import pytest

from flowsentinel.errors import ConfigError
from flowsentinel.service.config import Limits, ServiceConfig
from flowsentinel.service.sinks import AlertFile


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "nids.example"])
def test_beyond_loopback_needs_tokens_or_an_explicit_flag(host):
    config = ServiceConfig(model_dir="m", host=host)
    with pytest.raises(ConfigError, match="--insecure-no-auth"):
        config.check_exposure(has_tokens=False)
    config.check_exposure(has_tokens=True)
    ServiceConfig(model_dir="m", host=host, allow_unauthenticated=True).check_exposure(has_tokens=False)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost"])
def test_loopback_may_run_without_tokens(host):
    ServiceConfig(model_dir="m", host=host).check_exposure(has_tokens=False)


def test_tls_needs_both_files(tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError, match="both"):
        ServiceConfig(model_dir="m", tls_cert=cert)
    with pytest.raises(ConfigError, match="no such file"):
        ServiceConfig(model_dir="m", tls_cert=cert, tls_key=tmp_path / "missing.pem")


@pytest.mark.parametrize("field,value", [("max_flows", 0), ("body_timeout", 0), ("max_concurrency", -1)])
def test_limits_are_checked(field, value):
    with pytest.raises(ConfigError, match=field):
        Limits(**{field: value})


def _record(i: int) -> str:
    return json.dumps({"event_type": "alert", "n": i, "pad": "x" * 100}) + "\n"


def test_rotation_by_size_keeps_whole_records_and_the_newest_files(tmp_path):
    path = tmp_path / "alerts.jsonl"
    rotations = []
    sink = AlertFile(path, rotate_bytes=2048, keep=3, on_rotate=lambda: rotations.append(1))
    for i in range(200):
        sink.write(_record(i))
    sink.close()
    files = sorted(tmp_path.iterdir())
    assert [p.name for p in files] == ["alerts.jsonl", "alerts.jsonl.1", "alerts.jsonl.2", "alerts.jsonl.3"]
    numbers = []
    for name in ("alerts.jsonl.3", "alerts.jsonl.2", "alerts.jsonl.1", "alerts.jsonl"):
        numbers += [json.loads(line)["n"] for line in (tmp_path / name).read_text().splitlines()]
    assert numbers == list(range(numbers[0], 200))  # in order, nothing lost between the kept files
    assert len(rotations) > 3


def test_reopen_after_logrotate_moves_the_file(tmp_path):
    path = tmp_path / "alerts.jsonl"
    sink = AlertFile(path)
    sink.write(_record(1))
    path.rename(tmp_path / "alerts.jsonl.1")
    sink.write(_record(2))  # still into the moved file, as with any open file
    sink.reopen()
    sink.write(_record(3))
    sink.close()
    assert [json.loads(x)["n"] for x in (tmp_path / "alerts.jsonl.1").read_text().splitlines()] == [1, 2]
    assert [json.loads(x)["n"] for x in path.read_text().splitlines()] == [3]
