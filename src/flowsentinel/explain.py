"""Why this flow: integrated-gradients attributions of a deep detector's score, folded onto flow columns.

For a flow ``x`` and a baseline flow ``x'``, integrated gradients
(Sundararajan et al. 2017) give each model input the share

    (x_i - x'_i) * integral over a in [0, 1] of d score / d x_i at x' + a (x - x'),

and the shares add up to ``score(x) - score(x')`` (completeness). The
integral is a Gauss-Legendre sum over ``steps`` points; every point of every
flow goes through the network in one batched forward and backward pass.

The baseline is an empty flow by default: no packets, no bytes, no flags,
protocol 0. The training mean is the other common choice, but the NF
training sets are over 99% attacks, so their mean flow scores as an attack
(0.99996 for the CNN-BiLSTM on NF-BoT-IoT-v2) and every contribution would
explain why an alert is *less* alarming than it; the empty flow scores 0.13
there. Reference flows (say, benign traffic of the guarded network) can be
passed instead: their median model input is the baseline.

The score is the detector's anomaly score, ``1 - P(Benign)``. Model inputs
that come from one flow column (the one-hot slots of ``PROTOCOL``, the eight
bits of a TCP flag field, a duration and its wrap flag) are summed into that
column, and each column is reported with its raw value in the flow.

Only the rows asked for are computed: the alert writer asks for its alerts,
so flows that are not alerts cost nothing.

>>> from flowsentinel.synthetic import generate_flows
>>> from flowsentinel.models.deep import cnn_bilstm
>>> flows = generate_flows(600, random_state=0)
>>> det = cnn_bilstm(max_epochs=2, verbose=False).fit(flows)
>>> ex = explain_flows(det, flows, np.array([0, 1, 2]))
>>> gap = np.abs(ex.contributions.sum(axis=1) - (ex.scores - ex.baseline_score))
>>> bool((gap < 0.02).all())
True
>>> sorted(ex.top(0, 2)[0])
['contribution', 'feature', 'value']
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import ConfigError
from .schema import BENIGN_CLASS

#: Baselines an explanation can be measured from.
BASELINES = ("empty", "mean")

__all__ = ["BASELINES", "ExplainConfig", "Explanations", "baseline_input", "explain_flows", "explainable_parts", "column_of_input"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExplainConfig:
    """Attribution settings.

    Attributes:
        steps: Gauss-Legendre points along the path from the baseline (default
            32: on the CNN-BiLSTM, plain or binned, the attributions then add
            up to the score difference within about 1e-3; see
            ``tests/test_explain.py``).
        top_k: columns reported per alert, by absolute contribution.
        batch_points: path points per forward/backward pass (bounds memory).
        baseline: ``empty`` (a flow of zeros) or ``mean`` (the training mean
            of every model input); reference flows given to
            :func:`explain_flows` override it.
    """

    steps: int = 32
    top_k: int = 5
    batch_points: int = 16384
    baseline: str = "empty"

    def __post_init__(self):
        if self.steps < 1 or self.top_k < 1 or self.batch_points < 1:
            raise ConfigError(f"explain steps, top_k and batch_points must be at least 1, got {self}")
        if self.baseline not in BASELINES:
            raise ConfigError(f"explain baseline must be one of {', '.join(BASELINES)}, got {self.baseline!r}")


def column_of_input(name: str, columns: list[str]) -> str:
    """The flow column a model input comes from (``TCP_FLAGS.SYN`` -> ``TCP_FLAGS``, ``PROTOCOL=6`` -> ``PROTOCOL``).

    >>> column_of_input("PROTOCOL=6", ["PROTOCOL"]), column_of_input("FLOW_DURATION_MILLISECONDS.wrapped", ["FLOW_DURATION_MILLISECONDS"])
    ('PROTOCOL', 'FLOW_DURATION_MILLISECONDS')
    """
    for col in columns:
        if name == col or name.startswith(col + "=") or name.startswith(col + "."):
            return col
    raise ConfigError(f"model input {name!r} comes from none of the model's flow columns")


@dataclass
class Explanations:
    """Attributions of the scores of some flows.

    Attributes:
        columns: flow columns, in model order.
        contributions: ``(n_flows, n_columns)`` signed shares of each score.
        input_contributions: ``(n_flows, n_inputs)``, before folding onto columns.
        values: ``(n_flows, n_columns)`` raw flow values (object array).
        scores: the detector's score of each flow (torch forward pass).
        baseline_score: the score of the baseline.
    """

    columns: list[str]
    contributions: np.ndarray
    input_contributions: np.ndarray
    values: np.ndarray
    scores: np.ndarray
    baseline_score: float

    def top(self, i: int, k: int = 5) -> list[dict]:
        """The ``k`` columns that moved flow ``i``'s score most, as ``feature``/``value``/``contribution``."""
        row = self.contributions[i]
        order = np.argsort(-np.abs(row), kind="stable")[:k]
        return [{"feature": self.columns[j], "value": _plain(self.values[i, j]),
                 "contribution": round(float(row[j]), 4)} for j in order]


def _plain(value):
    """A JSON-friendly scalar: integers as ints, other numbers as floats."""
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return int(value) if float(value).is_integer() else round(float(value), 6)
    return value if isinstance(value, str) else str(value)


def explainable_parts(detector):
    """The detector, its PyTorch network and its feature pipeline, or a ConfigError saying why it cannot be explained.

    Whatever engine scores the flows, the attributions are computed on the
    PyTorch network of the same weights (:meth:`~flowsentinel.models.deep.DeepDetector.torch_module`).
    """
    inner = detector
    features = getattr(inner, "features_", None)
    if features is None or not hasattr(inner, "torch_module"):
        raise ConfigError(f"{type(inner).__name__}: explanations need a fitted deep detector with a network")
    module = inner.torch_module()
    if getattr(inner, "mode", "flow") != "flow":
        raise ConfigError("explanations need a per-flow model (mode 'flow'); this one scores windows of flows")
    classes = list(getattr(inner, "classes_", []))
    if not classes or classes[0] != BENIGN_CLASS:
        raise ConfigError("explanations attribute 1 - P(Benign); this model has no Benign class")
    return inner, module, features


def baseline_input(features, config: ExplainConfig, reference: pd.DataFrame | None = None) -> np.ndarray:
    """The baseline as a model input vector (see the module docstring)."""
    if reference is not None:
        return np.median(features.transform(reference, "explanation reference flows"), axis=0).astype("float32")
    if config.baseline == "mean":
        return np.zeros(len(features.output_names_), dtype="float32")
    empty = pd.DataFrame({c: [0.0] for c in sorted({*features.input_columns_, "PROTOCOL"})})
    return features.transform(empty)[0]


def explain_flows(detector, frame: pd.DataFrame, rows: np.ndarray, config: ExplainConfig = ExplainConfig(),
                  reference: pd.DataFrame | None = None) -> Explanations:
    """Integrated-gradients attributions of the scores of ``frame``'s rows ``rows`` (positions).

    ``reference``: flows whose median model input is the baseline (default: ``config.baseline``).
    """
    import torch
    from torch import nn

    inner, module, features = explainable_parts(detector)
    rows = np.asarray(rows, dtype=np.int64)
    part = frame.iloc[rows]
    x = torch.from_numpy(features.transform(part))
    n, m = x.shape
    nodes, weights = np.polynomial.legendre.leggauss(config.steps)
    alphas = torch.tensor((nodes + 1.0) / 2.0, dtype=torch.float32)
    w = torch.tensor(weights / 2.0, dtype=torch.float32)
    was_training = module.training
    module.eval()
    # A binned network encodes each input with steps at repeated quantile edges;
    # gradients cannot see a step, so the path runs through the encoded inputs
    # (the network after its encoding is continuous) and each input's channels
    # are summed back onto it.
    encoding = getattr(module, "encoding", None)
    with torch.no_grad():
        start = x if encoding is None else encoding(x)
        zero = torch.from_numpy(baseline_input(features, config, reference))
        base = zero if encoding is None else encoding(zero.unsqueeze(0))[0]
    rest = tuple(start.shape[1:])

    def score(batch: torch.Tensor) -> torch.Tensor:
        return 1.0 - torch.softmax(module(batch), dim=1)[:, 0]

    grads = torch.zeros_like(start)
    flows_per_pass = max(1, config.batch_points // config.steps)
    shape = (1, config.steps) + (1,) * len(rest)
    try:
        if encoding is not None:
            module.encoding = nn.Identity()
        for lo in range(0, n, flows_per_pass):
            chunk = start[lo:lo + flows_per_pass]
            k = len(chunk)
            path = base + alphas.view(shape) * (chunk - base).unsqueeze(1)  # (k, steps, *rest)
            path = path.reshape((k * config.steps,) + rest).requires_grad_(True)
            (g,) = torch.autograd.grad(score(path).sum(), path)
            grads[lo:lo + k] = (g.view((k, config.steps) + rest) * w.view(shape)).sum(dim=1)
        with torch.no_grad():
            scores = score(start).numpy().astype("float64") if n else np.zeros(0)
            base_score = float(score(base.unsqueeze(0))[0])
    finally:
        if encoding is not None:
            module.encoding = encoding
        module.train(was_training)
    shares = (start - base) * grads
    inputs = (shares.sum(dim=2) if shares.dim() == 3 else shares).numpy().astype("float64")
    columns = list(features.input_columns_)
    owner = np.asarray([columns.index(column_of_input(name, columns)) for name in features.output_names_])
    folded = np.zeros((n, len(columns)))
    np.add.at(folded, (slice(None), owner), inputs)
    values = part[columns].to_numpy(dtype=object)
    return Explanations(columns, folded, inputs, values, scores, base_score)
