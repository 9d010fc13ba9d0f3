"""The scorer: the verdicts detect would give, for any producer, batched or not; models checked before use."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from flowsentinel.errors import ModelLoadError
from flowsentinel.service.metrics import ServiceMetrics
from flowsentinel.service.model import ModelHolder, load_checked
from flowsentinel.service.scorer import Scorer
from flowsentinel.service.sinks import AlertFile
from flowsentinel.service.validate import FlowColumns


@pytest.fixture(scope="module")
def loaded(model_a):
    return load_checked(model_a)


@pytest.fixture()
def scorer(loaded, tmp_path):
    sink = AlertFile(tmp_path / "alerts.jsonl")
    s = Scorer(ModelHolder(loaded), ServiceMetrics(), sink, batch_flows=1000).start()
    s.alerts_path = tmp_path / "alerts.jsonl"
    yield s
    s.close(30)
    sink.close()


def _in_process(model_dir, frame):
    """What detect scores with: the saved model, wrapped for fast inference."""
    from flowsentinel.models.engines import InferenceConfig
    from flowsentinel.persistence import load_model

    fast = load_model(model_dir, inference=InferenceConfig(engine="auto", intra_op_threads=1))
    proba = fast.predict_proba(frame)
    scores = fast.scores_from_proba(proba)
    return scores, fast.labels_from_proba(proba), scores >= fast.threshold_


def test_many_small_frames_get_the_verdicts_of_one_in_process_call(scorer, model_a, flows):
    futures = [scorer.submit(FlowColumns.from_frame(flows.iloc[i:i + 37]), "http") for i in range(0, 740, 37)]
    results = [f.result(60) for f in futures]
    scores, classes, alerts = _in_process(model_a, flows.iloc[:740])
    np.testing.assert_allclose(np.concatenate([r.verdicts.scores for r in results]), scores, atol=1e-5)
    assert np.concatenate([r.verdicts.classes for r in results]).tolist() == classes.tolist()
    assert np.concatenate([r.verdicts.alerts for r in results]).tolist() == alerts.tolist()
    for r in results:
        assert len(r.eve) == int(r.verdicts.alerts.sum())
        assert all(json.loads(line)["event_type"] == "alert" for line in r.eve)
    written = scorer.alerts_path.read_text().splitlines()
    assert len(written) == int(alerts.sum())
    assert sorted(written) == sorted(line for r in results for line in r.eve)


def test_a_producer_frame_numbers_its_alerts_with_the_rows_given(scorer, flows):
    frame = flows.iloc[:50]
    result = scorer.submit(frame, "interface", rows=np.arange(1001, 1051)).result(60)
    rows = [json.loads(line)["flowsentinel"]["row"] for line in result.eve]
    assert rows == (np.flatnonzero(result.verdicts.alerts) + 1001).tolist()
    assert scorer.metrics.flows.labels("interface")._value.get() == 50


def test_frames_with_other_columns_are_not_mixed(scorer, flows):
    a = FlowColumns.from_frame(flows.iloc[:10])
    b = FlowColumns.from_frame(flows.iloc[10:20].assign(FLOW_ID=np.arange(10)))
    ra, rb = scorer.submit(a).result(60), scorer.submit(b).result(60)
    assert len(ra.verdicts) == len(rb.verdicts) == 10
    expected = flows.iloc[10:20]["IPV4_SRC_ADDR"].to_numpy()[rb.verdicts.alerts].tolist()
    assert [json.loads(x)["src_ip"] for x in rb.eve] == expected


def test_a_closed_scorer_takes_nothing(loaded, flows):
    s = Scorer(ModelHolder(loaded), ServiceMetrics()).start()
    assert s.close(30)
    with pytest.raises(Exception, match="shutting down"):
        s.submit(flows.iloc[:5])


@pytest.mark.parametrize("damage", ["weights", "preprocessing", "manifest"])
def test_a_damaged_model_is_refused_and_the_old_one_stays(loaded, model_a, tmp_path, damage):
    broken = tmp_path / "broken"
    shutil.copytree(model_a, broken)
    if damage == "weights":
        (broken / "model.onnx").unlink()
        for p in broken.glob("*.safetensors"):
            p.write_bytes(p.read_bytes()[:100])
    elif damage == "preprocessing":
        for p in broken.iterdir():
            if "preprocess" in p.name:
                p.unlink()
    else:
        (broken / "manifest.json").write_text("{")
    holder = ModelHolder(loaded)
    with pytest.raises(ModelLoadError):
        holder.swap(lambda: load_checked(broken))
    assert holder.current is loaded


def test_a_model_that_scores_nonsense_fails_its_checks(loaded, model_a, tmp_path):
    odd = tmp_path / "odd"
    shutil.copytree(model_a, odd)
    manifest = json.loads((odd / "manifest.json").read_text())
    manifest["threshold"] = float("nan")
    (odd / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError):
        load_checked(odd)


def test_a_cancelled_request_is_skipped_and_the_thread_goes_on(loaded, flows):
    s = Scorer(ModelHolder(loaded), ServiceMetrics())
    gave_up = s.submit(flows.iloc[:5])
    assert gave_up.cancel()  # what a request past its deadline does
    kept = s.submit(flows.iloc[5:10])
    s.start()
    assert len(kept.result(60).verdicts) == 5
    assert s.submit(flows.iloc[:3]).result(60) is not None
    assert s.close(30)
