"""What the baselines promise beyond the shared contract (see test_contract.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flowsentinel.models.autoencoder import AutoencoderDetector
from flowsentinel.models.baseline_networks import TCNNet
from flowsentinel.models.deep import DeepDetector, preset
from flowsentinel.models.presets import NETWORKS, network_defaults
from flowsentinel.models.registry import SHORT_NAMES, estimator_classes, make_detector
from flowsentinel.models.unsupervised import IsolationForestDetector, PCADetector
from flowsentinel.schema import BENIGN_CLASS
from flowsentinel.synthetic import generate_flows


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def benign_heavy():
    """Flows with many benign ones, and a separate benign validation set."""
    flows = generate_flows(4000, random_state=3, balance=1.0)
    val = generate_flows(4000, random_state=4, balance=1.0)
    return flows, val[val["Attack"] == BENIGN_CLASS].reset_index(drop=True)


# ---- PCA: Hotelling's T² and the residual --------------------------------------
def test_pca_statistics_match_the_textbook_formulas(benign_heavy):
    from sklearn.decomposition import PCA

    flows, val = benign_heavy
    det = PCADetector(n_components=5).fit(flows, X_val=val)  # with X_val, every benign row of flows is fitted
    benign = flows[flows["Attack"] == BENIGN_CLASS]
    Z = det.features_.transform(benign).astype("float64")
    ref = PCA(n_components=5, svd_solver="full").fit(Z)
    scores = ref.transform(Z)
    t2 = (scores**2 / ref.explained_variance_).sum(axis=1)
    residual = ((Z - ref.inverse_transform(scores)) ** 2).sum(axis=1)
    stats = det.statistics(benign)
    np.testing.assert_allclose(stats["t2"], t2, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(stats["residual"], residual, rtol=1e-6, atol=1e-8)
    # On the fitting rows T² averages k (n - 1) / n.
    assert stats["t2"].mean() == pytest.approx(5 * (len(Z) - 1) / len(Z), rel=1e-6)


def test_pca_with_every_component_leaves_no_residual(benign_heavy):
    flows, val = benign_heavy
    det = PCADetector(n_components=10_000).fit(flows, X_val=val)
    # Directions without benign variance are not components: only benign rows lie wholly inside.
    stats = det.statistics(flows[flows["Attack"] == BENIGN_CLASS])
    assert stats["residual"].max() < 1e-9 * stats["t2"].max()


def test_pca_statistic_choice(benign_heavy):
    flows, val = benign_heavy
    stats = PCADetector(n_components=4).fit(flows, X_val=val).statistics(flows)
    for statistic in ("t2", "residual"):
        det = PCADetector(n_components=4, statistic=statistic).fit(flows, X_val=val)
        np.testing.assert_allclose(det.score_samples(flows), stats[statistic])
    with pytest.raises(ValueError, match="statistic"):
        PCADetector(statistic="bogus").fit(flows)


# ---- unsupervised: benign only, threshold from a target false-alarm rate --------
UNSUPERVISED = [
    lambda far: PCADetector(target_far=far),
    lambda far: IsolationForestDetector(n_estimators=30, target_far=far, n_jobs=1),
    lambda far: AutoencoderDetector(hidden_layers=(16, 4), max_epochs=3, target_far=far, verbose=False),
]


@pytest.mark.parametrize("make", UNSUPERVISED, ids=["pca", "isolationforest", "autoencoder"])
@pytest.mark.parametrize("far", [0.01, 0.05])
def test_threshold_gives_the_target_false_alarm_rate(make, far, benign_heavy):
    flows, val = benign_heavy
    det = make(far).fit(flows, X_val=val)
    observed = det.is_alert(val).mean()
    # The threshold is an observed quantile: at most one flow off the target.
    assert far - 1.0 / len(val) <= observed <= far + 1.0 / len(val)
    assert det.validation_far_ == pytest.approx(observed)
    assert det.raw_threshold_ > 0
    raw = det.score_samples(val)
    assert ((raw >= det.raw_threshold_) == det.is_alert(val)).all()


@pytest.mark.parametrize("make", UNSUPERVISED, ids=["pca", "isolationforest", "autoencoder"])
def test_unsupervised_learn_benign_flows_only(make, benign_heavy):
    flows, _ = benign_heavy
    benign = flows[flows["Attack"] == BENIGN_CLASS].reset_index(drop=True)
    with_attacks = make(0.01).fit(flows)
    benign_only = make(0.01).fit(benign)
    np.testing.assert_array_equal(with_attacks.decision_function(flows), benign_only.decision_function(flows))
    assert with_attacks.n_train_flows_ + with_attacks.n_val_flows_ == len(benign)


def test_unsupervised_without_labels_take_all_flows_as_benign(benign_heavy, caplog):
    flows, _ = benign_heavy
    benign = flows[flows["Attack"] == BENIGN_CLASS].drop(columns=["Attack", "Label"]).reset_index(drop=True)
    det = PCADetector().fit(benign)
    assert det.n_train_flows_ + det.n_val_flows_ == len(benign)
    assert "no labels" in caplog.text


def test_unsupervised_refuse_all_attack_training_flows(benign_heavy):
    flows, _ = benign_heavy
    with pytest.raises(ValueError, match="no benign flows"):
        PCADetector().fit(flows[flows["Attack"] != BENIGN_CLASS])


def test_pseudo_probability_is_one_half_at_the_raw_threshold(benign_heavy):
    flows, val = benign_heavy
    det = PCADetector().fit(flows, X_val=val)
    raw = det.score_samples(flows)
    p = det.predict_proba(flows)[:, 1]
    assert det.threshold_ == 0.5
    np.testing.assert_allclose(p, raw / (raw + det.raw_threshold_))
    assert np.all(np.diff(p[np.argsort(raw)]) >= 0)


# ---- deep baselines: one estimator, networks passed in, causal TCN -----------------
def test_deep_baselines_are_presets_of_the_one_estimator():
    for name in NETWORKS:
        det = preset(name)
        assert type(det) is DeepDetector and det.network == name
        assert det.network_kwargs() == {"mode": "flow", "window": 8}  # the network class's defaults apply
        assert network_defaults(name)  # ... and they are the class's own, in one place
    assert not hasattr(AutoencoderDetector, "train_step")


def test_flat_settings_split_between_estimator_and_network():
    det = preset("cnn-bilstm", lstm_hidden=64, max_epochs=3)
    assert det.network_params == {"lstm_hidden": 64} and det.max_epochs == 3
    with pytest.raises(ValueError, match="unknown key"):
        preset("dnn", lstm_hidden=64)


@pytest.mark.parametrize("mode,shape", [("window", (3, 12, 5)), ("flow", (3, 30))])
def test_tcn_is_causal(mode, shape):
    torch.manual_seed(0)
    net = TCNNet(n_features=shape[-1] if mode == "window" else shape[1], n_classes=2, mode=mode, window=12,
                 channels=(8, 8, 8)).eval()
    x = torch.randn(*shape)
    length = shape[1]
    out = net.temporal(x)
    assert out.shape[-1] == length
    for t in (0, length // 2, length - 2):
        changed = x.clone()
        changed[:, t + 1 :] = torch.randn_like(changed[:, t + 1 :]) * 5
        after = net.temporal(changed)
        torch.testing.assert_close(after[..., : t + 1], out[..., : t + 1])
        assert not torch.allclose(after[..., t + 1 :], out[..., t + 1 :])


def test_registry_names_every_detector():
    kinds = {make_detector(name).kind for name in SHORT_NAMES}
    assert kinds == {"supervised", "unsupervised"}
    assert set(estimator_classes()) == {type(make_detector(name)).__name__ for name in SHORT_NAMES}
