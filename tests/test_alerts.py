"""Alert records: Community ID against the spec, EVE against what Filebeat's Suricata module reads, ECS, CSV."""

from __future__ import annotations

import csv
import hashlib
import io
import ipaddress
import json
import re

import numpy as np
import pandas as pd
import pytest

from flowsentinel.alerting.community_id import community_id, community_ids, sha1_short
from flowsentinel.alerting.ndpi import ndpi_name
from flowsentinel.alerting.suppress import SuppressConfig
from flowsentinel.io.alerts import CSV_FIELDS, AlertWriter
from tests.conftest import data_root

# corelight/community-id-spec, baseline/baseline_deflt.json (seed 0) and
# baseline_seed1.json (seed 1): (proto, saddr, daddr, sport, dport, id seed 0, id seed 1).
# For ICMP the "ports" are type and code.
SPEC_VECTORS = [
    (58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 135, 136, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="),
    (58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 136, 135, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="),
    (58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 135, 136, "1:zavyT/cezQr1fmImYCwYnMXbgck=", "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM="),
    (58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 136, 135, "1:zavyT/cezQr1fmImYCwYnMXbgck=", "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM="),
    (58, "3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", 3, 0, "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=", "1:lVEtCZpYu84Xqaa++3lXFyuu2n4="),
    (58, "3ffe:501:410:0:2c0:dfff:fe47:33e", "3ffe:507:0:1:200:86ff:fe05:80da", 1, 4, "1:hLZd0XGWojozrvxqE0dWB1iM6R0=", "1:W8MHwXpWzpoSTD+cGcaJr4u0ys8="),
    (58, "3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:501:0:1001::2", 128, 129, "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="),
    (58, "3ffe:501:0:1001::2", "3ffe:507:0:1:200:86ff:fe05:80da", 129, 128, "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="),
    (58, "fe80::200:86ff:fe05:80da", "ff02::2", 133, 134, "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=", "1:L7Ka0ZMYu+J3bL4ulW2PrqyXNo8="),
    (58, "fe80::260:97ff:fe07:69ea", "ff02::1", 134, 133, "1:pkvHqCL88/tg1k4cPigmZXUtL00=", "1:K/ee5UCqAMAQXDorP5nSa2CGLjc="),
    (1, "192.168.0.89", "192.168.0.1", 8, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
    (1, "192.168.0.1", "192.168.0.89", 0, 8, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
    (1, "10.0.0.1", "10.0.0.2", 11, 0, "1:YHxtAirCG//0OzkcVAukqKQN9xM=", "1:XjUibYHaafLQ3pxQeiMI8g25q20="),
    (6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw="),
    (6, "2607:f8b0:400c:c03::1a", "2001:470:e5bf:dead:4957:2174:e82c:4887", 25, 63943, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw="),
    (132, "192.168.170.8", "192.168.170.56", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="),
    (132, "192.168.170.56", "192.168.170.8", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="),
    (6, "128.232.110.120", "66.35.250.204", 34855, 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
    (6, "66.35.250.204", "128.232.110.120", 80, 34855, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
    (17, "192.168.1.52", "8.8.8.8", 54585, 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
    (17, "8.8.8.8", "192.168.1.52", 53, 54585, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
    (46, "10.1.12.1", "10.1.12.2", None, None, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="),
    (46, "10.1.12.2", "10.1.12.1", None, None, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="),
]
# The spec README's default-settings table (seed 0), for the cases the JSON files lack.
SPEC_TABLE = [
    (6, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:wCb3OG7yAFWelaUydu0D+125CLM="),
    (17, "5.6.7.8", "1.2.3.4", 3344, 1122, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="),
    (132, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8="),
    (1, "5.6.7.8", "1.2.3.4", 0, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="),
    (58, "fe80:0001:0203:0405:0607:0809:0A0B:0C0D", "fe80:1011:1213:1415:1617:1819:1A1B:1C1D", 146, 0, "1:fYC8+pz24E+EhANP1EZhpX0Dw10="),
    (46, "fe80:1011:1213:1415:1617:1819:1A1B:1C1D", "fe80:0001:0203:0405:0607:0809:0A0B:0C0D", None, None, "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0="),
]


@pytest.mark.parametrize("seed, column", [(0, 5), (1, 6)])
def test_community_id_matches_the_spec_baselines(seed, column):
    v = SPEC_VECTORS
    got = community_ids([r[1] for r in v], [r[2] for r in v], [r[0] for r in v], [r[3] or 0 for r in v],
                        [r[4] or 0 for r in v], seed=seed)
    assert got.tolist() == [r[column] for r in v]


def test_columnwise_sha1_is_hashlibs_for_every_one_block_length():
    rng = np.random.default_rng(7)
    sizes = np.r_[np.arange(56), rng.integers(0, 56, 40_000)]  # more rows than one round of _SHA1_ROWS
    messages = rng.integers(0, 256, (len(sizes), 55), dtype=np.uint8)
    got = sha1_short(messages, sizes)
    assert [bytes(got[i]) for i in range(len(sizes))] == [
        hashlib.sha1(messages[i, :k].tobytes()).digest() for i, k in enumerate(sizes.tolist())]


def test_community_ids_of_many_flows_are_those_of_one_flow_at_a_time():
    rng = np.random.default_rng(3)
    n = 500
    v4 = [f"10.{a}.{b}.{c}" for a, b, c in rng.integers(0, 256, (n, 3)).tolist()]
    v6 = [f"fe80::{a:x}:{b:x}" for a, b in rng.integers(0, 65536, (n, 2)).tolist()]
    src = [v6[i] if i % 7 == 0 else v4[i] for i in range(n)]
    dst = [v6[-i] if i % 7 == 0 else v4[-i] for i in range(n)]
    dst[1::11] = src[1::11]  # the same address both ways: the ports decide the order
    dst[2::13] = v6[2::13]  # mixed families: no hash
    proto = rng.choice([1, 6, 17, 47, 58, 132], n)
    sport, dport = rng.integers(0, 65536, n), rng.integers(0, 65536, n)
    sport[proto == 1] %= 20
    got = community_ids(src, dst, proto, sport, dport, seed=5)
    assert got.tolist() == [community_ids([s], [d], [p], [a], [b], seed=5)[0]
                            for s, d, p, a, b in zip(src, dst, proto, sport, dport)]


@pytest.mark.parametrize("proto, src, dst, sport, dport, expected", SPEC_TABLE)
def test_community_id_matches_the_spec_tables(proto, src, dst, sport, dport, expected):
    assert community_id(src, dst, proto, sport, dport) == expected


# ---- what Filebeat's Suricata module reads -------------------------------------
# x-pack/filebeat/module/suricata/eve/config/eve.yml (input processors) and
# ingest/pipeline.yml, with the field types of _meta/fields.yml: the fields of
# an alert or flow record that the module converts, renames or parses, and
# what each must be for that to work.
FILEBEAT_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{4})$")  # layout 2006-01-02T15:04:05.999999999Z0700
ISO8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")


def _is_long(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_ip(v):
    try:
        ipaddress.ip_address(v)
        return True
    except ValueError:
        return False


FILEBEAT_FIELDS = {
    # eve.yml: timestamp processor, convert processors (src/dest to source/destination.*)
    ("timestamp",): lambda v: isinstance(v, str) and FILEBEAT_TIMESTAMP.match(v),
    ("src_ip",): _is_ip,
    ("dest_ip",): _is_ip,
    ("src_port",): _is_long,
    ("dest_port",): _is_long,
    ("proto",): lambda v: isinstance(v, str),  # lowercased into network.transport
    ("event_type",): lambda v: isinstance(v, str) and v == v.lower(),
    ("app_proto",): lambda v: isinstance(v, str),  # lowercased into network.protocol
    ("flow_id",): _is_long,  # keyword in fields.yml; Suricata writes a number
    ("in_iface",): lambda v: isinstance(v, str),
    ("community_id",): lambda v: isinstance(v, str) and v.startswith("1:"),
    # pipeline.yml: alert.* to rule.*, event.severity, event.type / event.outcome
    ("alert", "category"): lambda v: isinstance(v, str) and v,
    ("alert", "signature_id"): _is_long,
    ("alert", "signature"): lambda v: isinstance(v, str) and v,
    ("alert", "action"): lambda v: v in ("allowed", "blocked"),
    ("alert", "severity"): lambda v: _is_long(v) and 1 <= v <= 3,
    ("alert", "gid"): _is_long,
    ("alert", "rev"): _is_long,
    ("alert", "metadata"): lambda v: isinstance(v, dict) and all(
        isinstance(x, list) and all(isinstance(s, str) for s in x) for x in v.values()),
    # pipeline.yml: flow counters renamed to source/destination.* and summed as long by a painless script
    ("flow", "pkts_toserver"): _is_long,
    ("flow", "pkts_toclient"): _is_long,
    ("flow", "bytes_toserver"): _is_long,
    ("flow", "bytes_toclient"): _is_long,
    # pipeline.yml: date processors with format ISO8601 into event.start / event.end
    ("flow", "start"): lambda v: isinstance(v, str) and ISO8601.match(v),
    ("flow", "end"): lambda v: isinstance(v, str) and ISO8601.match(v),
}
FILEBEAT_REQUIRED = {("timestamp",), ("event_type",)}
ALERT_REQUIRED = {("alert", k) for k in ("category", "signature_id", "signature", "action", "severity", "gid", "rev")}


def _lookup(rec, path):
    for key in path:
        if not isinstance(rec, dict) or key not in rec:
            return KeyError
        rec = rec[key]
    return rec


def check_filebeat(rec: dict) -> list[str]:
    """What in one record Filebeat's Suricata module would fail on or misread."""
    problems = []
    required = FILEBEAT_REQUIRED | (ALERT_REQUIRED if rec.get("event_type") == "alert" else set())
    for path, ok in FILEBEAT_FIELDS.items():
        value = _lookup(rec, path)
        if value is KeyError:
            if path in required:
                problems.append(f"{'.'.join(path)} missing")
        elif not ok(value):
            problems.append(f"{'.'.join(path)} = {value!r}")
    if "flow" in rec and "start" in rec["flow"] and "end" in rec["flow"]:
        if pd.Timestamp(rec["flow"]["start"]) > pd.Timestamp(rec["flow"]["end"]):
            problems.append("flow.start after flow.end")
    return problems


def write(frame, scores, classes, alerts, fmt="jsonl", **options):
    out = io.StringIO()
    w = AlertWriter(out, fmt, model_name="test-model", model_version="0.1.0/2026-01-05T10:00:00+00:00",
                    threshold=0.5, sensor="sensor-a", **options)
    w.write(frame, np.asarray(scores), np.asarray(classes, dtype=object), np.asarray(alerts),
            np.arange(len(frame)) + 2, frame["Attack"].to_numpy() if "Attack" in frame.columns else None)
    w.finish()
    return out.getvalue(), w


def records(text):
    return [json.loads(line) for line in text.splitlines()]


def scored(frame, share=0.5, seed=0):
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0, 1, len(frame))
    classes = np.where(scores >= share, frame.get("Attack", pd.Series(["DoS"] * len(frame))).to_numpy(dtype=object), "Benign")
    classes = np.where((scores >= share) & (classes == "Benign"), "Reconnaissance", classes)
    return scores, classes, scores >= share


def test_eve_records_of_real_flows_are_what_filebeat_reads(sample_frame):
    frame = sample_frame.head(2000)
    text, w = write(frame, *scored(frame))
    recs = records(text)
    assert len(recs) == w.n_written == 2000
    problems = {p for r in recs for p in check_filebeat(r)}
    assert not problems
    kinds = {r["event_type"] for r in recs}
    assert kinds == {"alert", "flow"}
    # Every envelope field comes from its own flow.
    for r, (_, f) in zip(recs[:50], frame.head(50).iterrows()):
        assert (r["src_ip"], r["src_port"], r["dest_ip"], r["dest_port"]) == (
            f.IPV4_SRC_ADDR, int(f.L4_SRC_PORT), f.IPV4_DST_ADDR, int(f.L4_DST_PORT))
        assert (r["flow"]["bytes_toserver"], r["flow"]["pkts_toclient"]) == (int(f.IN_BYTES), int(f.OUT_PKTS))
        assert r["community_id"] == community_id(f.IPV4_SRC_ADDR, f.IPV4_DST_ADDR, int(f.PROTOCOL),
                                                 int(f.L4_SRC_PORT), int(f.L4_DST_PORT))
        assert r.get("app_proto") == (None if f.L7_PROTO == 0 else ndpi_name(f.L7_PROTO).split(".")[0].lower())
        assert r["flowsentinel"]["true_class"] == f.Attack
    # NF v2 files have no times: the clock stamps them and the records say so.
    assert all(r["flowsentinel"]["time_source"] == "clock" for r in recs)
    assert {"flow.start", "flow.end"} <= set(recs[0]["flowsentinel"]["absent"])
    assert len({r["flow_id"] for r in recs}) == len(recs)


def test_eve_records_of_a_metered_capture_carry_flow_times(portscan_flows):
    frame = portscan_flows
    text, _ = write(frame, np.full(len(frame), 0.95), ["Reconnaissance"] * len(frame), np.ones(len(frame), bool),
                    suppress=SuppressConfig(enabled=False))
    recs = records(text)
    assert not {p for r in recs for p in check_filebeat(r)}
    for r, (_, f) in zip(recs, frame.iterrows()):
        end = pd.Timestamp(int(f.FLOW_END_MILLISECONDS), unit="ms", tz="UTC")
        assert pd.Timestamp(r["timestamp"]) == end  # the flow's time, never the clock
        assert pd.Timestamp(r["flow"]["start"]) == pd.Timestamp(int(f.FLOW_START_MILLISECONDS), unit="ms", tz="UTC")
        assert "time_source" not in r["flowsentinel"] and "absent" not in r["flowsentinel"]
        assert r["alert"]["signature_id"] == 1717020 and r["alert"]["rev"] == 1767607200


def test_flows_without_addresses_leave_the_address_fields_out():
    path = data_root() / "nf-cse-cic-ids2018-v2" / "NF-CSE-CIC-IDS2018-v2-sample.csv.gz"
    if not path.exists():
        pytest.skip(f"NF-CSE-CIC-IDS2018-v2 sample not found at {path}")
    # Read as a plain table: the writer needs no schema, and the file lacks the address columns.
    frame = pd.read_csv(path, nrows=500)
    for fmt in ("jsonl", "ecs"):
        text, _ = write(frame, *scored(frame), fmt=fmt)
        recs = records(text)
        assert len(recs) >= 1
        for r in recs:
            assert "src_ip" not in r and "community_id" not in r and "ip" not in r.get("source", {})
            if "aggregate" not in r["flowsentinel"]:
                assert {"src_ip", "dest_ip", "community_id"} <= set(r["flowsentinel"]["absent"])
        if fmt == "jsonl":
            assert not {p for r in recs for p in check_filebeat(r)}


def test_ecs_documents(sample_frame):
    frame = sample_frame.head(300)
    scores, classes, alerts = scored(frame)
    text, _ = write(frame, scores, classes, alerts, fmt="ecs", suppress=SuppressConfig(enabled=False))
    docs = records(text)
    assert len(docs) == len(frame)
    for d, is_alert, cls, (_, f) in zip(docs, alerts, classes, frame.iterrows()):
        assert ISO8601.match(d["@timestamp"]) and d["@timestamp"].endswith("Z")
        assert d["source"]["ip"] == f.IPV4_SRC_ADDR and d["destination"]["port"] == int(f.L4_DST_PORT)
        assert d["network"]["bytes"] == int(f.IN_BYTES + f.OUT_BYTES)
        assert d["network"]["community_id"].startswith("1:")
        if is_alert:
            assert d["event"]["kind"] == "alert"
            assert d["event"]["category"] == ["network", "intrusion_detection"]
            assert d["rule"]["name"] == f"FLOWSENTINEL {cls} traffic" and d["rule"]["id"].isdigit()
        else:
            assert d["event"]["kind"] == "event" and "rule" not in d


def test_csv_rows_parse_and_hold_every_flow(sample_frame):
    frame = sample_frame.head(400).copy()
    frame.loc[frame.index[0], "Attack"] = 'odd, "quoted" class'
    scores, classes, alerts = scored(frame)
    text, _ = write(frame, scores, classes, alerts, fmt="csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == CSV_FIELDS and len(rows) == len(frame)
    assert rows[0]["true_class"] == 'odd, "quoted" class'
    assert [r["alert"] for r in rows] == [str(int(a)) for a in alerts]
    assert [float(r["score"]) for r in rows] == pytest.approx(scores, abs=1e-6)


@pytest.mark.parametrize("case", ["plain", "nan ports", "quoted class", "no addresses", "float rows", "only alerts",
                                  "object addresses", "missing address", "no time", "icmp"])
def test_csv_lines_joined_by_pyarrow_are_those_joined_in_python(sample_frame, monkeypatch, case):
    import flowsentinel.io.alerts as alerts_module

    frame = sample_frame.head(300).copy()
    rows = np.arange(len(frame)) + 2
    options = {}
    if case == "nan ports":
        frame["L4_SRC_PORT"] = frame["L4_SRC_PORT"].astype(float)
        frame.loc[frame.index[::7], "L4_SRC_PORT"] = np.nan
    elif case == "quoted class":
        frame.loc[frame.index[3], "Attack"] = 'odd, "quoted" class'
    elif case == "no addresses":
        frame = frame.drop(columns=["IPV4_SRC_ADDR", "IPV4_DST_ADDR"])
    elif case == "float rows":
        rows = rows.astype(float)
    elif case == "only alerts":
        options["only_alerts"] = True
    elif case == "object addresses":  # as the meter and the collector build frames
        frame = frame.astype({"IPV4_SRC_ADDR": object, "IPV4_DST_ADDR": object})
    elif case == "missing address":
        frame = frame.astype({"IPV4_SRC_ADDR": object})
        frame.loc[frame.index[5], "IPV4_SRC_ADDR"] = None
        frame.loc[frame.index[6], "IPV4_DST_ADDR"] = "not an address"
    elif case == "no time":
        frame = frame.drop(columns=[c for c in frame.columns if c.startswith("FLOW_START") or c.startswith("FLOW_END")])
    elif case == "icmp":
        frame.loc[frame.index[:20], "PROTOCOL"] = 1
        frame.loc[frame.index[:20], "L4_DST_PORT"] = 8 * 256
    scores, classes, alerts = scored(frame)

    def text():
        out = io.StringIO()
        w = AlertWriter(out, "csv", threshold=0.5, **options)
        w.write(frame, scores, np.asarray(classes, dtype=object), alerts, rows, frame["Attack"].to_numpy())
        w.finish()
        return out.getvalue(), w.n_written

    joined = []
    arrow = alerts_module._csv_text_arrow
    monkeypatch.setattr(alerts_module, "_csv_text_arrow", lambda *a: joined.append(arrow(*a)) or joined[-1])
    fast = text()
    assert (joined[0] is None) == (case == "quoted class")  # a quoted cell: pyarrow refuses, Python joins
    monkeypatch.setattr(alerts_module, "_csv_text_arrow", lambda fields, empty: None)
    assert fast == text()


@pytest.mark.parametrize("dtype", ["str", object])
def test_text_factors_are_pandas_factorize(dtype):
    from flowsentinel.alerting.fields import factorize_text

    values = pd.Series(["10.0.0.2", None, "10.0.0.1", "10.0.0.2", "", " 10.0.0.3", None], dtype=dtype)
    codes, uniques = factorize_text(values)
    expected_codes, expected_uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    assert codes.tolist() == expected_codes.tolist()
    assert uniques.tolist() == list(expected_uniques)


def test_community_id_arrow_column_is_the_strings():
    from flowsentinel.alerting.community_id import community_id_array

    src = ["1.2.3.4", "5.6.7.8", None, "fe80::1", "10.0.0.1", "bad"]
    dst = ["5.6.7.8", "1.2.3.4", "1.1.1.1", "fe80::2", "fe80::2", "10.0.0.2"]
    proto, sport, dport = [6, 6, 17, 17, 6, 6], [1122, 3344, 53, 546, 1, 2], [3344, 1122, 5353, 547, 2, 1]
    strings = community_ids(src, dst, proto, sport, dport)
    column = community_id_array(src, dst, proto, sport, dport)
    assert column.to_pylist() == strings.tolist()
    assert strings[0] == strings[1] and strings[2] is None and strings[4] is None


def test_only_alerts_and_bad_format(sample_frame):
    frame = sample_frame.head(200)
    scores, classes, alerts = scored(frame)
    text, _ = write(frame, scores, classes, alerts, only_alerts=True, suppress=SuppressConfig(enabled=False))
    assert len(records(text)) == int(alerts.sum())
    from flowsentinel.errors import ConfigError

    with pytest.raises(ConfigError, match="format"):
        AlertWriter(io.StringIO(), "xml")


def test_ndpi_names_agree_with_ndpis_answer_keys():
    folder = data_root() / "pcaps" / "ndpi"
    keys = sorted(folder.glob("*.ndpiReader.out"))
    if not keys:
        pytest.skip(f"nDPI answer keys not found under {folder}")
    pairs = {m for k in keys for m in re.findall(r"\[proto: ([0-9.]+)/([^\]]+)\]", k.read_text(errors="replace"))}
    assert pairs
    for number, name in pairs:
        assert ndpi_name(float(number)) == name
