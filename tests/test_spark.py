"""spark-detect against detect: the same flows give the same scores, alerts, records and bad rows (Spark local[2]).

The input is the real NF-BoT-IoT-v2 sample, split into an uncompressed CSV
(read in several splits, so line numbers cross split boundaries) with bad
lines of every kind put in, and a gzip CSV (read whole by one task).
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyspark", reason="spark-detect needs pyspark: pip install 'flowsentinel[spark]'")
pytest.importorskip("onnxruntime", reason="spark-detect scores through ONNX Runtime: pip install 'flowsentinel[spark]'")
if not (shutil.which("java") or __import__("os").environ.get("JAVA_HOME")):
    pytest.skip("spark-detect needs Java 17+ (Debian: default-jre-headless)", allow_module_level=True)

import pyarrow.parquet as pq  # noqa: E402

from flowsentinel.alerting.suppress import SuppressConfig  # noqa: E402
from flowsentinel.cli import main  # noqa: E402
from flowsentinel.io.readers import rejects_name
from flowsentinel.models.deep import cnn_bilstm  # noqa: E402
from flowsentinel.persistence import load_model, save_model  # noqa: E402
from flowsentinel.serving.detect import detect_file  # noqa: E402
from flowsentinel.spark import SparkDetectConfig, spark_detect, spark_session  # noqa: E402

pytestmark = pytest.mark.spark

#: ONNX Runtime may take other kernels for other batch sizes: scores agree to float32 rounding.
SCORE_TOLERANCE = 1e-5
SENSOR = "sensor-test"
# (data line to spoil, how): every row rule, by the reason it gives.
SPOILED = {5: ("IN_BYTES", "-5"), 40: ("IN_PKTS", "nan"), 77: ("OUT_BYTES", "twelve"), 120: ("L7_PROTO", ""),
           300: ("truncate", None), 640: ("extra", None), 1500: ("MIN_TTL", "inf")}
# A bad label costs a flow nothing when scoring: detect and spark-detect both score it.
SCORED_ANYWAY = {2500: ("Label", "2")}


@pytest.fixture(scope="module")
def spark():
    session = spark_session("local[2]", [("spark.sql.files.maxPartitionBytes", str(256 * 1024)),
                                         ("spark.sql.shuffle.partitions", "4"), ("spark.default.parallelism", "2")])
    yield session
    session.stop()


@pytest.fixture(scope="module")
def model_dir(sample_frame, tmp_path_factory) -> Path:
    detector = cnn_bilstm(max_epochs=2, batch_size=256, verbose=False, num_threads=1).fit(sample_frame.iloc[:4000])
    return save_model(detector, tmp_path_factory.mktemp("spark-model") / "model")


@pytest.fixture(scope="module")
def inputs(sample_slice, tmp_path_factory) -> tuple[Path, Path]:
    """An uncompressed CSV with spoiled lines (3,000 data lines) and a gzip CSV (the next 3,000)."""
    folder = tmp_path_factory.mktemp("spark-in")
    with gzip.open(sample_slice, "rt", newline="") as fh:
        lines = fh.read().splitlines()
    header, rows = lines[0], lines[1:]
    names = header.split(",")
    spoiled = []
    for i, line in enumerate(rows[:3000], start=1):
        if i in SPOILED or i in SCORED_ANYWAY:
            what, value = SPOILED.get(i) or SCORED_ANYWAY[i]
            fields = line.split(",")
            if what == "truncate":
                fields = fields[:10]
            elif what == "extra":
                fields.append("7")
            else:
                fields[names.index(what)] = value
            line = ",".join(fields)
        spoiled.append(line)
    plain, packed = folder / "part-a.csv", folder / "part-b.csv.gz"
    plain.write_text("\n".join([header, *spoiled]) + "\n")
    with gzip.open(packed, "wt") as fh:
        fh.write("\n".join([header, *rows[3000:6000]]) + "\n")
    return plain, packed


def _detect(model_dir: Path, path: Path, folder: Path, suppress: SuppressConfig):
    """detect's verdict rows (CSV), alert records (EVE, alerts only) and rejects of one file."""
    detector = load_model(model_dir, engine="onnx")
    folder.mkdir(parents=True, exist_ok=True)
    table, eve = folder / f"{path.name}.verdicts.csv", folder / f"{path.name}.eve.jsonl"
    with open(table, "w", newline="") as fh:
        detect_file(detector, path, fh, "csv", progress=False, rejects_dir=folder, suppress=suppress, sensor=SENSOR,
                    host_context=None)
    with open(eve, "w") as fh:
        detect_file(detector, path, fh, "jsonl", only_alerts=True, progress=False, rejects_dir=folder,
                    suppress=suppress, sensor=SENSOR, host_context=None)
    with open(table, newline="") as fh:
        verdicts = {int(r["row"]): r for r in csv.DictReader(fh)}
    rejects_file = folder / rejects_name(path)
    rejects = set()
    if rejects_file.exists():
        with open(rejects_file, newline="") as fh:
            rejects = {(int(r["line"]), r["column"], r["reason"]) for r in csv.DictReader(fh)}
    return verdicts, [json.loads(x) for x in eve.read_text().splitlines()], rejects


def _spark_records(out: Path) -> list[dict]:
    return [json.loads(line) for part in sorted((out / "alerts").glob("part-*")) for line in part.read_text().splitlines()]


def _split_scores(record: dict) -> tuple[dict, list[float]]:
    """A record without its clock timestamp and with its scores taken out (compared within tolerance)."""
    record = json.loads(json.dumps(record))
    if record.get("flowsentinel", {}).get("time_source") == "clock":
        record.pop("timestamp")
    scores = [record["flowsentinel"].pop("score")]
    if "alert" in record:
        scores.append(record["alert"].pop("score"))
        scores.append(float(record["alert"]["metadata"].pop("score", ["nan"])[0]))
    return record, scores


def _same_records(ours: list[dict], theirs: list[dict], key) -> None:
    mine = {key(r): _split_scores(r) for r in ours}
    other = {key(r): _split_scores(r) for r in theirs}
    assert len(mine) == len(ours) and len(other) == len(theirs)
    assert mine.keys() == other.keys()
    for k in mine:
        assert mine[k][0] == other[k][0], k
        np.testing.assert_allclose(mine[k][1], other[k][1], atol=SCORE_TOLERANCE)


def test_scores_alerts_and_bad_rows_equal_detect(spark, model_dir, inputs, tmp_path):
    out = tmp_path / "out"
    off = SuppressConfig(enabled=False)
    summary = spark_detect(spark, SparkDetectConfig(inputs=tuple(str(p) for p in inputs), output=str(out),
                                                    model_dir=str(model_dir), sensor=SENSOR, suppress=off))
    threshold = load_model(model_dir).threshold_
    verdicts = pq.read_table(out / "verdicts").to_pandas()
    assert set(verdicts["source"]) == {p.name for p in inputs}
    spark_records = _spark_records(out)
    all_records, n_rejected = [], 0
    for path in inputs:
        expected, records, rejects = _detect(model_dir, path, tmp_path / "detect", off)
        ours = verdicts[verdicts["source_file"] == str(path)].set_index("line")
        assert sorted(ours.index) == sorted(expected), path
        theirs = np.array([float(expected[line]["score"]) for line in ours.index])
        np.testing.assert_allclose(ours["score"].to_numpy(), theirs, atol=SCORE_TOLERANCE)
        # A class or an alert may differ only where the score sits on the threshold, within the tolerance.
        clear = np.abs(theirs - threshold) > SCORE_TOLERANCE
        assert (ours["predicted_class"].to_numpy()[clear] == np.array(
            [expected[line]["predicted_class"] for line in ours.index])[clear]).all()
        assert (ours["alert"].to_numpy()[clear] == np.array(
            [expected[line]["alert"] == "1" for line in ours.index])[clear]).all()
        all_records += records
        spark_rejects = set()
        if (out / "rejects").exists():
            for part in (out / "rejects").glob("part-*.csv"):
                with open(part, newline="") as fh:
                    spark_rejects |= {(int(r["line"]), r["column"] or "", r["reason"]) for r in csv.DictReader(fh)
                                      if r["source"] == str(path)}
        assert spark_rejects == rejects, path
        n_rejected += len(rejects)
    _same_records(spark_records, all_records, key=lambda r: (r["flowsentinel"]["row"], r["flow_id"]))
    assert summary.n_rejected == n_rejected == len(SPOILED)
    assert summary.n_flows == len(verdicts) == 6000 - len(SPOILED)
    assert summary.n_alerts == int(verdicts["alert"].sum()) == summary.n_records


def _timed_copy(plain: Path, folder: Path) -> Path:
    """The clean lines of ``plain`` with flow times in file order (a meter's export), 0.4 s apart."""
    lines = plain.read_text().splitlines()
    out = folder / "timed.csv"
    n_fields = len(lines[0].split(","))
    rows = [line for line in lines[1:] if len(line.split(",")) == n_fields and ",-5," not in line][:2000]
    t0 = 1_700_000_000_000
    with open(out, "w") as fh:
        fh.write("FLOW_START_MILLISECONDS,FLOW_END_MILLISECONDS," + lines[0] + "\n")
        for i, line in enumerate(rows):
            fh.write(f"{t0 + 400 * i},{t0 + 400 * i + 50},{line}\n")
    return out


def test_suppressed_alerts_equal_detects_on_flows_in_time_order(spark, model_dir, inputs, tmp_path):
    timed = _timed_copy(inputs[0], tmp_path)
    window = SuppressConfig(window_s=60.0)
    out = tmp_path / "out"
    summary = spark_detect(spark, SparkDetectConfig(inputs=(str(timed),), output=str(out), model_dir=str(model_dir),
                                                    sensor=SENSOR, suppress=window))
    _, records, _ = _detect(model_dir, timed, tmp_path / "detect", window)
    followups = [r for r in records if "aggregate" in r["flowsentinel"]]
    assert followups, "the test data must make detect fold repeats"
    assert summary.partition_by == "date" and summary.n_followups == len(followups)
    _same_records(_spark_records(out), records,
                  key=lambda r: (r["flowsentinel"].get("row"), r.get("flow_id"), r["timestamp"]))
    days = pq.read_table(out / "verdicts").column("date").to_pylist()
    assert set(days) == {"2023-11-14"}


def test_parquet_input_scores_as_detect_does(spark, model_dir, inputs, tmp_path):
    from flowsentinel.io.readers import ReadConfig, read_flows

    flows, _ = read_flows(inputs[1], ReadConfig(require_labels=False))
    path = tmp_path / "flows.parquet"
    flows.to_parquet(path, index=False)
    out = tmp_path / "out"
    spark_detect(spark, SparkDetectConfig(inputs=(str(path),), output=str(out), model_dir=str(model_dir),
                                          suppress=SuppressConfig(enabled=False)))
    expected, _, _ = _detect(model_dir, path, tmp_path / "detect", SuppressConfig(enabled=False))
    ours = pq.read_table(out / "verdicts").to_pandas().set_index("line").sort_index()
    assert list(ours.index) == sorted(expected)
    np.testing.assert_allclose(ours["score"], [float(expected[i]["score"]) for i in ours.index], atol=SCORE_TOLERANCE)


def test_the_command_line_runs_the_job_and_refuses_what_it_cannot_do(spark, model_dir, inputs, tmp_path, capsys):
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    other = tmp_path / "reordered.csv"  # the same columns, two of them swapped
    with gzip.open(inputs[1], "rt") as fh:
        header, *rows = fh.read().splitlines()[:50]
    names = header.split(",")
    names[1], names[3] = names[3], names[1]
    other.write_text("\n".join([",".join(names), *rows]) + "\n")
    args = ["spark-detect", str(inputs[1]), str(out), "--model-dir", str(model_dir), "--no-suppress"]
    assert main(["-q", *args, "--summary", str(summary)]) == 0
    assert json.loads(summary.read_text())["n_flows"] == 3000
    assert "spark-detect: 3,000 flows" in capsys.readouterr().err
    cases = [
        (args, "already exists"),  # the outputs of the run above
        (["spark-detect", str(tmp_path / "absent.csv"), str(tmp_path / "o2"), "--model-dir", str(model_dir)],
         "no such file"),
        (["spark-detect", str(inputs[1]), str(tmp_path / "o3"), "--model-dir", str(tmp_path / "no-model")],
         "no such model directory"),
        (["spark-detect", str(inputs[1]), str(tmp_path / "o4"), "--model-dir", str(model_dir), "--partition-by",
          "date"], "needs flow times"),
        (["spark-detect", str(inputs[1]), str(tmp_path / "o5"), "--model-dir", str(model_dir), "--conf", "nonsense"],
         "KEY=VALUE"),
        (["spark-detect", str(inputs[1]), str(other), str(tmp_path / "o6"), "--model-dir", str(model_dir)],
         "header differs"),
    ]
    for argv, message in cases:
        assert main(["-q", *argv]) == 2, argv
        err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
        assert len(err) == 1 and message in err[0], (argv, err)
    assert main(["-q", *args, "--overwrite"]) == 0
