"""The MindSpore backend: weight layout, parity with PyTorch, training, cross-loading, CLI.

Runs only in the MindSpore environment (``pip install .[mindspore]`` in its
own virtual environment); everywhere else the whole module is skipped.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytestmark = pytest.mark.mindspore

pytest.importorskip("mindspore", reason="MindSpore backend environment not installed (pip install .[mindspore])")

import torch  # noqa: E402

from flowsentinel.backends.mindspore import (  # noqa: E402
    MindSporeEngine,
    canonical_state,
    load_canonical_state,
    make_forward,
    mindspore_layout_to_torch,
    network_classes,
    torch_layout_to_mindspore,
)
from flowsentinel.cli import main  # noqa: E402
from flowsentinel.io.readers import read_flows  # noqa: E402
from flowsentinel.models.deep import cnn_bilstm  # noqa: E402
from flowsentinel.models.networks import CNNBiLSTMNet  # noqa: E402
from flowsentinel.persistence import load_model, save_model  # noqa: E402

PARITY_ATOL = 1e-5


def load_model_in_mindspore(path):
    """A saved model, scored by MindSpore's compiled network."""
    from flowsentinel.persistence import load_model

    return load_model(path, backend="mindspore")
FAST = {"max_epochs": 1, "batch_size": 256, "verbose": False}


def _random_torch_net(mode: str, layers: int, seed: int) -> CNNBiLSTMNet:
    """A network with every weight, batch-norm statistic included, away from its initial value."""
    torch.manual_seed(seed)
    kwargs = cnn_bilstm(mode=mode, lstm_layers=layers).network_kwargs()
    net = CNNBiLSTMNet(24, 5, **kwargs).eval()
    with torch.no_grad():
        for name, value in net.state_dict().items():
            if name.endswith("running_var"):
                value.uniform_(0.5, 2.0)
            elif value.is_floating_point():
                value.normal_(0.0, 0.3)
    return net


@pytest.mark.parametrize("mode,layers", [("flow", 1), ("window", 2)])
def test_layout_round_trip_is_exact(mode, layers):
    tnet = _random_torch_net(mode, layers, seed=3)
    state = {k: v.numpy().copy() for k, v in tnet.state_dict().items() if not k.endswith("num_batches_tracked")}

    ms_state = torch_layout_to_mindspore(state)
    assert ms_state["features.0.conv.weight"].shape == state["features.0.conv.weight"].shape[:2] + (1, 3)
    assert "features.1.bn.moving_variance" in ms_state and "features.1.bn.running_var" not in ms_state
    back = mindspore_layout_to_torch(ms_state)
    assert back.keys() == state.keys()
    assert all(np.array_equal(back[k], state[k]) and back[k].dtype == state[k].dtype for k in state)

    # Through a real MindSpore network: its parameter names are what the conversion produces.
    net = network_classes().MindSporeCNNBiLSTMNet(24, 5, **cnn_bilstm(mode=mode, lstm_layers=layers).network_kwargs())
    assert set(net.parameters_dict()) == set(ms_state)
    load_canonical_state(net, state)
    again = canonical_state(net)
    assert again.keys() == state.keys() and all(np.array_equal(again[k], state[k]) for k in state)


def test_native_and_fast_cells_share_parameters_and_outputs():
    tnet = _random_torch_net("flow", 1, seed=5)
    state = {k: v.numpy() for k, v in tnet.state_dict().items() if not k.endswith("num_batches_tracked")}
    kwargs = cnn_bilstm().network_kwargs()
    x = np.random.default_rng(0).normal(size=(64, 24)).astype(np.float32)
    with torch.no_grad():
        expected = tnet(torch.from_numpy(x)).numpy()
    import mindspore as ms

    for conv, lstm in (("matmul", "unrolled"), ("native", "native")):
        net = network_classes().MindSporeCNNBiLSTMNet(24, 5, conv=conv, lstm=lstm, **kwargs)
        load_canonical_state(net, state)
        net.set_train(False)
        logits = make_forward(net)(ms.Tensor(x)).asnumpy()
        assert np.abs(logits - expected).max() <= PARITY_ATOL, (conv, lstm)


def test_weights_that_do_not_fit_are_named():
    net = network_classes().MindSporeCNNBiLSTMNet(24, 5, **cnn_bilstm().network_kwargs())
    state = canonical_state(net)
    state.pop("out.bias")
    state["hidden.weight"] = state["hidden.weight"][:, :3]
    with pytest.raises(ValueError, match=r"out\.bias.*hidden\.weight"):
        load_canonical_state(net, state)


# ---- a PyTorch-trained model, served by MindSpore ------------------------------------------------


@pytest.fixture(scope="module")
def torch_models(sample_frame, tmp_path_factory):
    """PyTorch-trained, saved models on the real sample slice, one per input mode, made when first asked for."""
    made = {}

    def get(mode):
        if mode not in made:
            base, _, binned = mode.partition("-")
            det = cnn_bilstm(mode=base, input_bins=16 if binned else 0, random_state=1, **FAST)
            det.fit(sample_frame.iloc[:3000])
            made[mode] = det, save_model(det, tmp_path_factory.mktemp(f"torch-{mode}") / "model")
        return made[mode]

    return get


@pytest.mark.parametrize("mode", ["flow", "window", "flow-binned", "window-binned"])
def test_parity_on_real_flows(torch_models, mode, sample_frame):
    """Same weights, same class probabilities: PyTorch-trained, scored in both backends."""
    torch_det, path = torch_models(mode)
    ms_det = load_model_in_mindspore(path)
    assert isinstance(ms_det.engine_, MindSporeEngine) and ms_det.mode == torch_det.mode
    assert ms_det.network_kwargs() == torch_det.network_kwargs()
    assert list(ms_det.classes_) == list(torch_det.classes_) and ms_det.threshold_ == torch_det.threshold_
    expected = torch_det.predict_proba(sample_frame)
    got = ms_det.predict_proba(sample_frame)
    assert got.shape == expected.shape == (len(sample_frame), len(torch_det.classes_))
    diff = float(np.abs(got - expected).max())
    assert diff <= PARITY_ATOL, f"max |P_mindspore - P_torch| = {diff:.2e}"
    assert (ms_det.predict(sample_frame) == torch_det.predict(sample_frame)).mean() > 0.999
    # Odd batch sizes are padded to a compiled shape and cut back.
    np.testing.assert_allclose(ms_det.predict_proba(sample_frame.iloc[:37]), expected[:37], atol=PARITY_ATOL)


# ---- a MindSpore-trained model, served by PyTorch ------------------------------------------------


@pytest.fixture(scope="module")
def small_synthetic(synthetic):
    return synthetic.iloc[:1500].reset_index(drop=True)


@pytest.fixture(scope="module")
def ms_trained(small_synthetic):
    return cnn_bilstm(backend="mindspore", max_epochs=3, batch_size=256, verbose=False, random_state=0).fit(small_synthetic)


def test_mindspore_training_reduces_loss(ms_trained, small_synthetic):
    losses = [h["train_loss"] for h in ms_trained.history_]
    assert len(losses) >= 2 and losses[-1] < losses[0]
    assert ms_trained.best_epoch_ in {h["epoch"] for h in ms_trained.history_}
    proba = ms_trained.predict_proba(small_synthetic)
    assert proba.shape == (len(small_synthetic), len(ms_trained.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    scores = ms_trained.decision_function(small_synthetic)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert (ms_trained.predict(small_synthetic) == small_synthetic["Attack"].to_numpy()).mean() > 0.5


def test_mindspore_starts_where_torch_starts(ms_trained, small_synthetic):
    """Same seed, same initial weights and loop: the first epoch's loss is close to the PyTorch backend's."""
    torch_det = type(ms_trained)(**ms_trained.get_params()).set_params(max_epochs=1, backend="torch").fit(small_synthetic)
    assert abs(ms_trained.history_[0]["train_loss"] - torch_det.history_[0]["train_loss"]) < 0.05


def test_mindspore_window_mode_trains(synthetic):
    det = cnn_bilstm(backend="mindspore", mode="window", window=4, max_epochs=1, batch_size=256, verbose=False)
    det.fit(synthetic.iloc[:800])
    assert det.predict_proba(synthetic.iloc[:50]).shape == (50, len(det.classes_))


def test_mindspore_model_loads_in_torch_and_back(ms_trained, small_synthetic, tmp_path):
    path = save_model(ms_trained, tmp_path / "model")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["backend"] == "mindspore"
    assert manifest["estimator"] == "DeepDetector" and manifest["state"]["architecture"]["network"] == "CNNBiLSTMNet"
    assert "mindspore" in manifest["versions"]
    expected = ms_trained.predict_proba(small_synthetic)

    torch_det = load_model(path, engine="torch")
    assert type(torch_det.engine_).__name__ == "TorchEngine"
    assert np.abs(torch_det.predict_proba(small_synthetic) - expected).max() <= PARITY_ATOL

    again = load_model_in_mindspore(path)
    assert np.abs(again.predict_proba(small_synthetic) - expected).max() <= PARITY_ATOL


def test_scores_follow_weights_loaded_after_compiling(small_synthetic, tmp_path):
    """Restoring the best checkpoint sets the weights after the forward pass was
    compiled; scoring, the alert threshold and the saved model must all use them."""
    det = cnn_bilstm(backend="mindspore", **FAST, random_state=3).fit(small_synthetic)
    before = det.predict_proba(small_synthetic)  # compiles and caches the forward pass
    state = {k: (v * 0.5 if k.endswith("weight") else v) for k, v in det.canonical_weights().items()}
    load_canonical_state(det.network_module, state)
    after = det.predict_proba(small_synthetic)
    assert np.abs(after - before).max() > 1e-3
    torch_det = load_model(save_model(det, tmp_path / "model"), engine="torch")
    assert np.abs(torch_det.predict_proba(small_synthetic) - after).max() <= PARITY_ATOL


def test_compiled_training_steps_follow_torch_after_the_first():
    """Several steps of the compiled training step move every weight as PyTorch does.

    (A padding op whose gradient went wrong from the second call on once left the
    first convolution block learning from garbage while the first step matched.)"""
    from mindspore import Tensor
    from mindspore.experimental.optim import SGD

    from flowsentinel.backends.mindspore import make_train_step

    kwargs = cnn_bilstm(input_bins=4, dropout=0.0).network_kwargs()
    n_in, n_cls, lr = 12, 3, 0.05
    torch.manual_seed(0)
    tnet = CNNBiLSTMNet(n_in, n_cls, **kwargs)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        tnet.encoding.edges.copy_(torch.from_numpy(np.sort(rng.normal(size=(n_in, 5)), axis=1).astype(np.float32)))
    mnet = network_classes().MindSporeCNNBiLSTMNet(n_in, n_cls, **kwargs)
    load_canonical_state(mnet, {k: v.numpy() for k, v in tnet.state_dict().items() if not k.endswith("num_batches_tracked")})
    topt = torch.optim.SGD(tnet.parameters(), lr=lr)
    step = make_train_step(mnet, SGD(mnet.trainable_params(), lr=lr), None)
    for _ in range(3):
        x = rng.normal(size=(64, n_in)).astype(np.float32)
        y = rng.integers(0, n_cls, 64)
        tnet.train()
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tnet(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        torch.nn.utils.clip_grad_norm_(tnet.parameters(), 5.0)
        topt.step()
        mnet.set_train(True)
        step(Tensor(x), Tensor(y.astype(np.int32)))
    got = canonical_state(mnet)
    for name, value in tnet.state_dict().items():
        if name in got:
            assert np.abs(got[name] - value.numpy()).max() < 1e-5, name


def test_binned_mindspore_model_fits_its_edges_and_loads_in_torch(small_synthetic, tmp_path):
    det = cnn_bilstm(backend="mindspore", input_bins=8, max_epochs=1, batch_size=256, verbose=False).fit(small_synthetic)
    edges = det.canonical_weights()["encoding.edges"]
    assert edges.shape == (len(det.features_.output_names_), 9) and not np.allclose(edges, 0.0)
    expected = det.predict_proba(small_synthetic)
    torch_det = load_model(save_model(det, tmp_path / "model"), engine="torch")
    assert np.array_equal(torch_det.torch_module().encoding.edges.numpy(), edges)
    assert np.abs(torch_det.predict_proba(small_synthetic) - expected).max() <= PARITY_ATOL


def test_only_cnn_bilstm_models_load_in_mindspore(small_synthetic, tmp_path):
    from flowsentinel.errors import ConfigError
    from flowsentinel.models.deep import preset

    dnn = preset("dnn", max_epochs=1, verbose=False).fit(small_synthetic)
    path = save_model(dnn, tmp_path / "model")
    with pytest.raises(ConfigError, match="cnn-bilstm network only"):
        load_model_in_mindspore(path)
    with pytest.raises(ConfigError, match="cnn-bilstm network only"):
        preset("dnn", backend="mindspore", max_epochs=1, verbose=False).fit(small_synthetic)


# ---- the command line ----------------------------------------------------------------------------


def test_cli_evaluate_and_detect_with_mindspore_backend(torch_models, sample_slice, tmp_path):
    _, torch_cli_model = torch_models("flow")
    assert main(["-q", "evaluate", "--model-dir", str(torch_cli_model), "--data", str(sample_slice),
                 "--report-dir", str(tmp_path / "eval"), "--backend", "mindspore"]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["n_flows"] == 6000 and 0.0 <= metrics["accuracy"] <= 1.0

    out = tmp_path / "alerts.csv"
    assert main(["-q", "detect", str(sample_slice), "--model-dir", str(torch_cli_model), "--output", str(out),
                 "--format", "csv", "--no-progress", "--backend", "mindspore"]) == 0
    with open(out, newline="") as fh:
        scores = np.array([float(r["score"]) for r in csv.DictReader(fh)])
    flows, _ = read_flows(sample_slice)
    expected = load_model(torch_cli_model).decision_function(flows)  # the default backend, from the same directory
    assert len(scores) == 6000
    np.testing.assert_allclose(scores, expected, atol=PARITY_ATOL)


def test_cli_train_with_mindspore_backend(sample_slice, tmp_path):
    model = tmp_path / "model"
    assert main(["-q", "train", "--data", str(sample_slice), "--model-dir", str(model), "--epochs", "1",
                 "--backend", "mindspore", "--no-reference", "--max-rows", "1200",
                 "--set", "model.batch_size=256"]) == 0
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["backend"] == "mindspore" and manifest["config"]["run"]["backend"] == "mindspore"
    # and the default (PyTorch) backend serves it
    assert main(["-q", "evaluate", "--model-dir", str(model), "--data", str(sample_slice),
                 "--report-dir", str(tmp_path / "eval")]) == 0
