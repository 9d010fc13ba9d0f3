"""Group-aware splits: a capture or device lies wholly on one side; whole groups can be held out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flowsentinel.errors import ConfigError, DataError
from flowsentinel.evaluation.splits import group_split, leave_groups_out, make_split, stratified_split
from flowsentinel.sources import GROUP_COLUMN, SourcesConfig, load_sources
from tests.conftest import data_root

PARTS = ("train", "val", "test")


def parts_of(split):
    return {name: getattr(split, name) for name in PARTS}


def assert_groups_on_one_side(split, groups):
    seen: dict[object, str] = {}
    for name, idx in parts_of(split).items():
        for g in set(groups[idx]):
            assert seen.setdefault(g, name) == name, f"group {g!r} is in both {seen[g]} and {name}"


def assert_partition(split, n):
    every = np.concatenate(list(parts_of(split).values()))
    assert np.array_equal(np.sort(every), np.arange(n))


@pytest.fixture(scope="module")
def table():
    """Groups of very different sizes: devices (many flows), captures (some), file rows (one)."""
    rng = np.random.default_rng(3)
    rows = []
    for d in range(8):
        rows += [("Benign", f"device-{d}")] * int(rng.integers(20, 400))
    for c in range(40):
        rows += [("Benign", f"app-{c}.pcap")] * int(rng.integers(1, 30))
    for c in range(5):
        rows += [("DDoS", f"flood-{c}.pcap")] * int(rng.integers(100, 3000))
    rows += [("DDoS", f"file:{i}") for i in range(3000)]
    rows += [("BruteForce", "ftp.pcap")] * 30
    y, groups = (np.array(col, dtype=object) for col in zip(*rows))
    return y, groups


def test_every_group_lies_on_one_side_and_every_flow_in_one_part(table):
    y, groups = table
    split = group_split(y, groups, seed=0)
    assert_partition(split, len(y))
    assert_groups_on_one_side(split, groups)
    assert split.info["groups"] == {name: len(set(groups[idx])) for name, idx in parts_of(split).items()}


def test_a_class_with_three_groups_or_more_is_in_every_part(table):
    y, groups = table
    split = group_split(y, groups, seed=1)
    for cls in ("Benign", "DDoS"):
        for name, idx in parts_of(split).items():
            assert (y[idx] == cls).any(), f"no {cls} in {name}"
    # One capture cannot be split: it trains, and the report says so.
    assert set(y[split.val]) | set(y[split.test]) == {"Benign", "DDoS"}
    assert split.info["classes_only_in_train"] == ["BruteForce"]


def test_the_flow_shares_come_near_the_fractions(table):
    y, groups = table
    for fractions in ((0.7, 0.15, 0.15), (0.5, 0.25, 0.25)):
        split = group_split(y, groups, fractions, seed=2)
        for cls in ("Benign", "DDoS"):
            n = (y == cls).sum()
            shares = [float((y[idx] == cls).sum() / n) for idx in parts_of(split).values()]
            assert np.abs(np.array(shares) - np.array(fractions)).max() < 0.05, (cls, fractions, shares)


def test_strata_spread_each_sources_groups_over_the_parts():
    # Four flood captures beside thousands of file rows of the same class.
    y = np.array(["DDoS"] * (4 * 500 + 3000), dtype=object)
    groups = np.array([f"cap-{i // 500}" for i in range(2000)] + [f"row-{i}" for i in range(3000)], dtype=object)
    strata = np.array(["captures"] * 2000 + ["file"] * 3000, dtype=object)
    split = group_split(y, groups, seed=0, strata=strata)
    for name, idx in parts_of(split).items():
        assert (strata[idx] == "captures").any(), f"no capture in {name}"
    assert_groups_on_one_side(split, groups)


def test_the_same_seed_gives_the_same_split(table):
    y, groups = table
    a, b, c = group_split(y, groups, seed=5), group_split(y, groups, seed=5), group_split(y, groups, seed=6)
    assert all(np.array_equal(x, z) for x, z in zip(parts_of(a).values(), parts_of(b).values()))
    assert not np.array_equal(a.test, c.test)


def test_bad_groups_are_refused():
    with pytest.raises(DataError, match="every flow needs a group"):
        group_split(np.array(["a", "b"]), np.array(["g"]))
    with pytest.raises(DataError, match="1 flow\\(s\\) have no group"):
        group_split(np.array(["a", "b"]), np.array(["g", None], dtype=object))


def test_make_split_takes_the_groups_from_the_table(table):
    y, groups = table
    flows = pd.DataFrame({GROUP_COLUMN: groups, "Attack": y})
    split = make_split(flows, y, "group", [], seed=0)
    assert split.protocol == "group"
    assert_groups_on_one_side(split, groups)
    with pytest.raises(ConfigError, match="group protocol needs each flow's group"):
        make_split(flows.drop(columns=[GROUP_COLUMN]), y, "group", [])


def test_paper_and_dedup_are_unchanged(table):
    y, _ = table
    flows = pd.DataFrame({"x": np.arange(len(y)) % 7})
    paper = make_split(flows, y, "paper", ["x"], seed=4)
    reference = stratified_split(y, (0.7, 0.15, 0.15), 4)
    assert all(np.array_equal(getattr(paper, p), getattr(reference, p)) for p in PARTS)
    dedup = make_split(flows, y, "dedup", ["x"], seed=4)
    assert dedup.info["n_unique_vectors"] == len(dedup.train) + len(dedup.val) + len(dedup.test)


def test_whole_groups_can_be_held_out(table):
    _, groups = table
    held = leave_groups_out(groups, ["device-3", "app-1*"])
    assert set(groups[held.held]) == {"device-3", "app-1.pcap", *(f"app-{i}.pcap" for i in range(10, 20))}
    assert not set(groups[held.keep]) & set(groups[held.held])
    assert len(held.keep) + len(held.held) == len(groups)
    with pytest.raises(ConfigError, match="'device-9' matches no group"):
        leave_groups_out(groups, ["device-9"])


def test_a_split_of_labelled_captures_keeps_each_device_and_capture_on_one_side(tmp_path):
    pcaps = data_root() / "pcaps"
    if not (pcaps / "benign/iot-sentinel").is_dir():
        pytest.skip(f"shared captures not found at {pcaps}; set FLOWSENTINEL_DATA to the shared data folder")
    devices = sorted((pcaps / "benign/iot-sentinel").iterdir())[:4]
    labels = tmp_path / "labels.csv"
    lines = ["capture,label,use"]
    for device in devices:
        lines += [f"{p},Benign,train" for p in sorted(device.glob("*.pcap"))[:3]]
    lines += [f"{p},Benign,train" for p in sorted((pcaps / "benign/ndpi-apps").glob("*.pcap"))[:6]]
    labels.write_text("\n".join(lines) + "\n")
    data = load_sources([str(labels)], SourcesConfig(cache_dir=tmp_path / "cache"))
    y = data.flows["Attack"].to_numpy(dtype=object)
    split = make_split(data.flows, y, "group", [], seed=0)
    assert_partition(split, len(y))
    assert_groups_on_one_side(split, data.groups)
    captures = data.flows["Capture"].to_numpy(dtype=object)
    assert_groups_on_one_side(split, captures)
    assert data.flows[GROUP_COLUMN].nunique() == len(devices) + 6
