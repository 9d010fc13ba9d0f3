"""The one detector contract, checked over every detector flowsentinel has.

Each detector is fitted once per session (tiny sizes, few epochs) on a
slice of the synthetic flows; every check below then runs against it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from flowsentinel.errors import ConfigError, MissingColumnsError, NotFittedError
from flowsentinel.models.autoencoder import AutoencoderDetector
from flowsentinel.models.boosting import LightGBMDetector
from flowsentinel.models.deep import preset
from flowsentinel.models.registry import estimator_classes
from flowsentinel.models.trees import ExtraTreesDetector, RandomForestDetector
from flowsentinel.models.unsupervised import IsolationForestDetector, PCADetector
from flowsentinel.persistence import load_model, save_model
from flowsentinel.schema import BENIGN_CLASS

# One torch thread: on a small CPU, tiny batches run faster without thread hand-offs.
DEEP = dict(max_epochs=3, patience=3, batch_size=64, lr=1e-2, num_threads=1, verbose=False)
N_FLOWS = 800

FACTORIES = {
    "cnn-bilstm-flow": lambda: preset("cnn-bilstm", conv_channels=(8, 16), lstm_hidden=8, dense=16, **DEEP),
    "cnn-bilstm-window": lambda: preset("cnn-bilstm", mode="window", window=4, conv_channels=(8, 16), lstm_hidden=8,
                                        dense=16, **DEEP),
    "extratrees": lambda: ExtraTreesDetector(n_estimators=15, n_jobs=1),
    "randomforest": lambda: RandomForestDetector(n_estimators=15, n_jobs=1),
    "lightgbm": lambda: LightGBMDetector(n_estimators=25, n_jobs=1),
    "dnn": lambda: preset("dnn", hidden_layers=(32, 16), **DEEP),
    "cnn": lambda: preset("cnn", conv_channels=(8, 16), dense=16, **DEEP),
    "lstm": lambda: preset("lstm", hidden=8, dense=16, **DEEP),
    "cnn-lstm": lambda: preset("cnn-lstm", conv_channels=(8, 16), hidden=8, dense=16, **DEEP),
    "cnn-gru": lambda: preset("cnn-gru", conv_channels=(8, 16), hidden=8, dense=16, **DEEP),
    "tcn": lambda: preset("tcn", channels=(8, 8), dense=16, **DEEP),
    "pca": lambda: PCADetector(),
    "isolationforest": lambda: IsolationForestDetector(n_estimators=25, n_jobs=1),
    "autoencoder": lambda: AutoencoderDetector(hidden_layers=(16, 4), max_epochs=3, num_threads=1, verbose=False),
}
NAMES = list(FACTORIES)


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def flows(synthetic) -> pd.DataFrame:
    """N_FLOWS synthetic flows with every benign one kept (the unsupervised models need them)."""
    benign = synthetic[synthetic["Attack"] == BENIGN_CLASS]
    attacks = synthetic[synthetic["Attack"] != BENIGN_CLASS].sample(N_FLOWS - len(benign), random_state=0)
    return pd.concat([benign, attacks]).sample(frac=1.0, random_state=1).reset_index(drop=True)


@pytest.fixture(scope="session")
def fitted(flows):
    cache: dict[str, object] = {}

    def get(name: str):
        if name == "lightgbm":
            pytest.importorskip("lightgbm", reason="LightGBM is the optional 'baselines' extra")
        if name not in cache:
            det = FACTORIES[name]()
            assert det.fit(flows) is det, "fit must return self"
            cache[name] = det
        return cache[name]

    return get


@pytest.mark.parametrize("name", NAMES)
def test_fit_returns_self_and_sets_learned_state(name, fitted, flows):
    det = fitted(name)
    assert det.n_features_in_ == len(det.feature_names_in_)
    assert det.classes_[0] == BENIGN_CLASS
    assert np.isfinite(det.threshold_)
    if det.kind == "unsupervised":
        assert list(det.classes_) == ["Benign", "Attack"]


@pytest.mark.parametrize("name", NAMES)
def test_clone_and_get_params_round_trip(name, fitted):
    det = fitted(name)
    fresh = clone(det)
    assert type(fresh) is type(det)
    assert fresh.get_params() == det.get_params()
    assert type(det)(**det.get_params()).get_params() == det.get_params()
    assert not hasattr(fresh, "features_")
    assert type(det).__name__ in estimator_classes()


@pytest.mark.parametrize("name", NAMES)
def test_predict_proba_rows_sum_to_one(name, fitted, flows):
    det = fitted(name)
    proba = det.predict_proba(flows)
    assert proba.shape == (len(flows), len(det.classes_))
    assert np.all(proba >= -1e-9) and np.all(proba <= 1 + 1e-9)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_scores_higher_on_attacks(name, fitted, flows):
    det = fitted(name)
    scores = det.decision_function(flows)
    attack = (flows["Attack"] != BENIGN_CLASS).to_numpy()
    assert scores.shape == (len(flows),)
    assert scores[attack].mean() > scores[~attack].mean()
    np.testing.assert_allclose(det.scores_from_proba(det.predict_proba(flows)), scores, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_predict_applies_threshold(name, fitted, flows):
    det = fitted(name)
    scores = det.decision_function(flows)
    original = det.threshold_
    try:
        det.threshold_ = float(scores.max()) + 1.0
        assert set(det.predict(flows)) == {BENIGN_CLASS}
        assert not det.is_alert(flows).any()
        det.threshold_ = float(scores.min()) - 1.0
        assert BENIGN_CLASS not in set(det.predict(flows))
    finally:
        det.threshold_ = original
    labels = det.predict(flows)
    assert set(labels) <= set(det.classes_)
    assert ((labels != BENIGN_CLASS) == (scores >= det.threshold_)).all()


@pytest.mark.parametrize("name", NAMES)
def test_unfitted_use_raises(name, flows):
    det = FACTORIES[name]()  # no fit: LightGBM itself is not needed here
    for method in (det.predict_proba, det.decision_function, det.predict):
        with pytest.raises(NotFittedError):
            method(flows.head(5))


@pytest.mark.parametrize("name", NAMES)
def test_missing_column_is_named(name, fitted, flows):
    det = fitted(name)
    column = "IN_BYTES"
    assert column in set(det.feature_names_in_)
    with pytest.raises(MissingColumnsError, match=column):
        det.predict_proba(flows.drop(columns=[column]).head(20))
    with pytest.raises(MissingColumnsError, match=column):
        det.check_columns([c for c in flows.columns if c != column])


@pytest.mark.parametrize("name", NAMES)
def test_same_random_state_gives_identical_scores(name, fitted, flows):
    det = fitted(name)
    short = {"max_epochs": 1} if "max_epochs" in det.get_params() else {}
    first, second = (clone(det).set_params(**short).fit(flows) for _ in range(2))
    np.testing.assert_array_equal(first.decision_function(flows), second.decision_function(flows))


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(name, fitted, flows, tmp_path):
    det = fitted(name)
    save_model(det, tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    assert type(loaded) is type(det)
    assert loaded.threshold_ == det.threshold_
    assert list(loaded.classes_) == list(det.classes_)
    np.testing.assert_array_equal(loaded.decision_function(flows), det.decision_function(flows))
    np.testing.assert_array_equal(loaded.predict(flows), det.predict(flows))
    assert not list((tmp_path / "model").glob("*.pkl")) and not list((tmp_path / "model").glob("*.joblib"))


@pytest.mark.parametrize("name", NAMES)
def test_every_detector_declares_the_threshold_policy(name):
    params = FACTORIES[name]().get_params()
    assert "threshold" in params and "target_far" in params


@pytest.mark.parametrize("name", NAMES)
def test_a_fixed_threshold_is_kept_and_a_target_is_met(name, flows):
    det = clone(FACTORIES[name]()).set_params(threshold=0.42)
    if "max_epochs" in det.get_params():
        det.set_params(max_epochs=1)
    assert det.fit(flows).threshold_ == 0.42
    target = clone(det).set_params(threshold=None, target_far=0.1)
    val = flows.iloc[::3].reset_index(drop=True)
    target.fit(flows, X_val=val)
    benign = val[val["Attack"] == BENIGN_CLASS]
    assert target.is_alert(benign).mean() <= 0.1 + 1e-9


@pytest.mark.parametrize("name", NAMES)
def test_bad_parameter_values_fail_before_any_work(name, flows):
    det = FACTORIES[name]()
    bad = {"threshold": 2.0}
    if "max_epochs" in det.get_params():
        bad = {"max_epochs": 0}
    with pytest.raises(ConfigError):
        clone(det).set_params(**bad).fit(flows)
