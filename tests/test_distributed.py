"""Training with torchrun: two processes (DDP, gloo) reach one process's scores, and their model is an ordinary one."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flowsentinel.cli import main
from flowsentinel.config import load_config
from flowsentinel.io.readers import read_flows
from flowsentinel.persistence import load_model, read_manifest
from flowsentinel.training.distributed import DistributedContext, _load_shard, shard_ranks
from flowsentinel.training.experiment import evaluate

EPOCHS = "8"  # past the first epochs, where one run stalls at the majority class and another does not
TRAIN = ["--epochs", EPOCHS, "--no-reference", "--set", "model.batch_size=256"]


def torchrun(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node 2`` (rendezvous on loopback), its whole process group stopped at the end."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.fixture(scope="module")
def held_out(sample_path, tmp_path_factory) -> Path:
    """Rows 6,001 to 9,000 of the real sample: flows none of the models trains on."""
    out = tmp_path_factory.mktemp("held") / "held.csv.gz"
    with gzip.open(sample_path, "rt") as src, gzip.open(out, "wt") as dst:
        for i, line in enumerate(src):
            if i == 0 or 6000 < i <= 9000:
                dst.write(line)
            if i > 9000:
                break
    return out


@pytest.fixture(scope="module")
def models(sample_slice, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("ddp")
    paths = {"one-0": out / "one-0", "one-1": out / "one-1", "two": out / "two"}
    for seed in ("0", "1"):
        assert main(["-q", "train", "--data", str(sample_slice), "--model-dir", str(paths[f"one-{seed}"]),
                     "--seed", seed, *TRAIN]) == 0
    proc = torchrun("-m", "flowsentinel.cli", "train", "--data", str(sample_slice), "--model-dir", str(paths["two"]),
                    *TRAIN)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Rank 0 alone reports: one result table on standard output.
    assert proc.stdout.count("metric ") == 1
    return paths


@pytest.mark.slow
def test_two_processes_reach_the_scores_of_one(models, held_out):
    flows, _ = read_flows(held_out)
    scores = {name: evaluate(load_model(path), flows, "multiclass")[0] for name, path in models.items()}
    n = len(flows)
    for metric in ("accuracy", "f1_weighted"):
        one = [scores["one-0"][metric], scores["one-1"][metric]]
        p = float(np.mean(one))
        # Noise: how far two one-process runs (two seeds) fall apart, plus three standard errors of a
        # difference of two proportions on these n flows.
        noise = abs(one[0] - one[1]) + 3 * np.sqrt(2 * p * (1 - p) / n)
        assert abs(scores["two"][metric] - p) <= noise, (metric, scores["two"][metric], one, noise)


@pytest.mark.slow
def test_the_two_process_model_loads_and_scores_like_any_other(models, sample_slice, tmp_path, capsys):
    one, two = read_manifest(models["one-0"]), read_manifest(models["two"])
    assert set(one) == set(two) and one["params"] == two["params"] and one["input_columns"] == two["input_columns"]
    record = two["training_data"]["distributed"]
    assert record["world_size"] == 2 and record["backend"] == "gloo" and record["shards"] == "rows"
    assert sum(p["n_flows"] for p in record["per_process"]) == 6000
    assert two["metrics"]["test"]["n_flows"] == sum(p["n_test"] for p in record["per_process"])
    flows, _ = read_flows(sample_slice)
    by_engine = [load_model(models["two"], engine=e).predict_proba(flows.iloc[:500]) for e in ("torch", "onnx")]
    np.testing.assert_allclose(by_engine[0], by_engine[1], atol=1e-4)
    assert main(["info", "--model-dir", str(models["two"])]) == 0
    assert "files and the decision fields match" in capsys.readouterr().out
    out = tmp_path / "eve.jsonl"
    assert main(["-q", "detect", str(sample_slice), "--model-dir", str(models["two"]), "--output", str(out),
                 "--no-progress", "--no-suppress"]) == 0
    records = out.read_text().splitlines()
    assert len(records) == 6000 and json.loads(records[0])["flowsentinel"]["model"] == "cnn-bilstm"


def test_shards_are_whole_files_when_there_are_enough(sample_slice, tmp_path):
    from flowsentinel.sources import parse_sources

    copies = []
    for name in ("a", "b"):
        copies.append(tmp_path / f"NF-BoT-IoT-v2-{name}.csv.gz")
        copies[-1].write_bytes(sample_slice.read_bytes())
    cfg = load_config(None, [f"run.data={json.dumps([str(p) for p in copies])}"])
    for rank in (0, 1):
        data, how = _load_shard(cfg, DistributedContext(rank=rank, world_size=2), tmp_path)
        assert how == "files" and len(data.flows) == 6000
        assert data.info["path"] == str(parse_sources([str(copies[rank])])[0].path)


def test_one_file_is_shared_row_by_row_keeping_duplicates_together(sample_slice, tmp_path):
    cfg = load_config(None, [f"run.data=['{sample_slice}']", "run.protocol='dedup'"])
    shards = [_load_shard(cfg, DistributedContext(rank=r, world_size=2), tmp_path) for r in (0, 1)]
    assert [how for _, how in shards] == ["rows", "rows"]
    assert sum(len(d.flows) for d, _ in shards) == 6000
    from flowsentinel.features import input_columns
    from flowsentinel.schema import get_schema

    columns = input_columns(get_schema("v2"), cfg.features)
    vectors = [set(map(tuple, d.flows[columns].to_numpy().tolist())) for d, _ in shards]
    assert not vectors[0] & vectors[1]
    assert shard_ranks(shards[0][0].flows, "paper", columns, None, 2).tolist()[:4] == [0, 1, 0, 1]


def test_nccl_is_refused_with_the_reason():
    from flowsentinel.errors import ConfigError

    with pytest.raises(ConfigError, match="gloo"):
        DistributedContext.from_env({"WORLD_SIZE": "2", "RANK": "0", "FLOWSENTINEL_DIST_BACKEND": "nccl"})
