"""Adapting a model to the network it guards (``flowsentinel adapt``).

A quiet week of the guarded network's own traffic (captures or flow files,
taken as benign) goes in; out comes a model that has seen it:

1. The network's flows are split by group (capture, device; by time order
   within one capture when there is only one) into a part to learn from
   (60%), a part to set the threshold on (20%) and a part held back to
   report on (20%), so the reported false-alarm rate is measured on flows the
   adapted model never saw in any way.
2. A deep model goes on training (:meth:`~flowsentinel.models.deep.DeepDetector.fine_tune`)
   on its original training flows (recomputed from its manifest: the same
   sources, protocol and seed) mixed with the network's flows, so that the
   attacks it knew stay known; other detectors are fitted again on the mix.
3. The alert threshold is the higher of the model's own policy on its
   original validation flows and the one that flags at most ``target_far``
   of the network's threshold flows.
4. The false-alarm rate on the held-back flows and the detection rate on
   attack flows (``attacks``: by default the shared ``check`` captures, for
   reporting only) are measured before and after, by the model alone and,
   where the caller passes the flags of a stage run beside the model
   (``flowsentinel adapt`` passes host context's, as ``detect`` runs; that
   stage is not adapted), with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from ..models.thresholds import ThresholdPolicy
from ..schema import ATTACK_COLUMN, BENIGN_CLASS
from .experiment import prepared_from_manifest

__all__ = ["AdaptConfig", "AdaptResult", "adapt_model", "DEFAULT_ATTACKS"]

log = logging.getLogger(__name__)

#: Attack flows reported on by default: the shared check captures (never learned from).
DEFAULT_ATTACKS = ("data:pcaps/labels.csv,use=check",)


@dataclass(frozen=True)
class AdaptConfig:
    """How a model is adapted.

    Attributes:
        target_far: share of the network's benign flows the threshold may flag.
        shares: parts of the network's flows to learn from, to set the
            threshold on, and to report on.
        epochs: fine-tuning epochs (deep models).
        lr: fine-tuning learning rate (default: a tenth of the model's).
        original_rows: at most this many of the original training flows in the mix.
        network_weight: the network's flows are repeated to this share of the mix.
        seed: the splits and the draw of original flows.
    """

    target_far: float = 0.01
    shares: tuple[float, float, float] = (0.6, 0.2, 0.2)
    epochs: int = 5
    lr: float | None = None
    original_rows: int = 60_000
    network_weight: float = 0.2
    seed: int = 0

    def __post_init__(self):
        ThresholdPolicy(target_far=self.target_far)
        if len(self.shares) != 3 or min(self.shares) <= 0 or abs(sum(self.shares) - 1) > 1e-6:
            raise ConfigError(f"adapt shares must be three parts above 0 summing to 1, got {self.shares!r}")
        if not 0 < self.network_weight < 1:
            raise ConfigError(f"adapt network_weight must be in (0, 1), got {self.network_weight!r}")


@dataclass
class AdaptResult:
    """What adapting did, measured before and after."""

    before: dict[str, Any]
    after: dict[str, Any]
    threshold: tuple[float, float]
    flows: dict[str, int]
    output_dir: str
    groups: dict[str, list[str]] = field(default_factory=dict)

    def table(self) -> str:
        from ..evaluation.tables import Column, render

        rows = [{"when": "before", **self.before, "threshold": self.threshold[0]},
                {"when": "after", **self.after, "threshold": self.threshold[1]}]
        cols = [Column("when", ""), Column("threshold", "threshold", "{:.4f}"),
                Column("held_back_far", "false-alarm rate on held-back network flows", "{:.4f}"),
                Column("attack_detection", "detection on attack flows", "{:.4f}"),
                Column("held_back_far_context", "false-alarm rate, with host context", "{:.4f}"),
                Column("attack_detection_context", "detection, with host context", "{:.4f}")]
        return render(rows, cols, "text")


def _parts(flows: pd.DataFrame, shares, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Row indices to learn from, to calibrate on, to report on: whole groups where there are enough."""
    groups = flows["Group"].astype(str).to_numpy() if "Group" in flows.columns else np.full(len(flows), "")
    names = list(pd.unique(groups))
    if len(names) >= 3:
        order = np.random.default_rng(seed).permutation(len(names))
        n_fit = max(1, int(round(len(names) * shares[0])))
        n_cal = max(1, int(round(len(names) * shares[1])))
        n_fit = min(n_fit, len(names) - 2)
        picked = [names[i] for i in order]
        fit, cal, rep = picked[:n_fit], picked[n_fit:n_fit + n_cal], picked[n_fit + n_cal:]
        if not rep:
            rep, cal = cal[-1:], cal[:-1] or fit[-1:]
        masks = [np.isin(groups, part) for part in (fit, cal, rep)]
        return (*(np.flatnonzero(m) for m in masks), {"learn": fit, "threshold": cal, "report": rep})
    # One or two captures: by time (table) order, the last flows held back.
    n = len(flows)
    a, b = int(n * shares[0]), int(n * (shares[0] + shares[1]))
    if a < 1 or b - a < 1 or n - b < 1:
        raise DataError(f"{n} flow(s) of the guarded network are too few to split into parts to learn from, "
                        "set the threshold on and report on; give more of its traffic")
    return np.arange(a), np.arange(a, b), np.arange(b, n), {"learn": names, "threshold": names, "report": names}


def _rates(detector, held_back: pd.DataFrame, attacks: pd.DataFrame | None,
           beside: Callable[[pd.DataFrame], np.ndarray] | None = None) -> dict[str, float | None]:
    """False alarms on the held-back flows and detection on the attack flows, by the model alone and, where
    ``beside`` gives the flags of a stage run beside the model (``detect``'s host context), with it."""

    def both(frame: pd.DataFrame) -> tuple[float | None, float | None]:
        if not len(frame):
            return None, None
        alone = detector.is_alert(frame)
        return float(alone.mean()), (float((alone | beside(frame)).mean()) if beside is not None else None)

    far, far_context = both(held_back)
    det, det_context = both(attacks) if attacks is not None else (None, None)
    return {"held_back_far": far, "held_back_far_context": far_context, "attack_detection": det,
            "attack_detection_context": det_context}


def adapt_model(base_dir: str | Path, benign: list[Any], output_dir: str | Path, config: AdaptConfig = AdaptConfig(),
                *, train_data: list[Any] | None = None, attacks: list[Any] | None = None,
                beside: Callable[[pd.DataFrame], np.ndarray] | None = None) -> AdaptResult:
    """Adapt the model in ``base_dir`` to benign flows of the guarded network; save it to ``output_dir``.

    ``beside``: the flags of a stage that scoring runs beside the model and that adapting leaves as it is
    (the command line passes host context's, each capture on its own); the rates are then also given
    with it."""
    from ..persistence import load_model, save_model
    from ..sources import load_sources, parse_sources

    base = load_model(base_dir)
    manifest = base.manifest_
    cfg_dict = manifest.get("config") or {}
    parsed = [_as_benign(s) for s in benign]
    network = load_sources(parsed).flows
    network = network[network[ATTACK_COLUMN] == BENIGN_CLASS].reset_index(drop=True)
    if network.empty:
        raise DataError("the guarded network's sources gave no benign flows")
    base.check_columns(network.columns, "the guarded network's flows")
    fit_idx, cal_idx, rep_idx, groups = _parts(network, config.shares, config.seed)
    learn, calibrate, held_back = (network.iloc[i].reset_index(drop=True) for i in (fit_idx, cal_idx, rep_idx))

    attack_flows = None
    for attempt in ([attacks] if attacks else [list(DEFAULT_ATTACKS)]):
        try:
            loaded = load_sources(parse_sources(attempt)).flows
            attack_flows = loaded[loaded[ATTACK_COLUMN] != BENIGN_CLASS].reset_index(drop=True)
        except ConfigError as exc:
            if attacks:
                raise
            log.warning("no attack flows to report detection on (%s)", exc)
    before = _rates(base, held_back, attack_flows, beside)
    threshold_before = float(base.threshold_)

    # The original training flows, as the model's own run split them.
    prepared = prepared_from_manifest(manifest, train_data)
    rng = np.random.default_rng(config.seed)
    original = prepared.train
    if len(original) > config.original_rows:
        original = original.iloc[np.sort(rng.choice(len(original), config.original_rows, replace=False))]
    n_network = int(round(len(original) * config.network_weight / (1 - config.network_weight)))
    repeated = learn.iloc[rng.integers(0, len(learn), max(n_network, len(learn)))]
    common = [c for c in original.columns if c in repeated.columns]
    mix = pd.concat([original[common], repeated[common]], ignore_index=True)
    val_common = [c for c in prepared.val.columns if c in calibrate.columns]
    val = pd.concat([prepared.val[val_common], calibrate[val_common]], ignore_index=True)

    log.info("adapting %s: %d original and %d network flows (%d distinct) to learn from, %d network flows to set "
             "the threshold on, %d held back", base_dir, len(original), len(repeated), len(learn), len(calibrate),
             len(held_back))
    if hasattr(base, "fine_tune"):
        lr = config.lr if config.lr is not None else float(base.lr) / 10
        base.fine_tune(mix, X_val=val, max_epochs=config.epochs, lr=lr)
    else:
        base.fit(mix, X_val=val)
    own = float(base.threshold_)
    network_threshold = ThresholdPolicy(target_far=config.target_far).fit(base.decision_function(calibrate))
    base.threshold_ = max(own, network_threshold)
    after = _rates(base, held_back, attack_flows, beside)
    flows = {"original": int(len(original)), "network_learn": int(len(learn)), "network_threshold": int(len(calibrate)),
             "network_held_back": int(len(held_back)), "attacks": 0 if attack_flows is None else int(len(attack_flows))}
    save_model(base, output_dir, metrics={**manifest.get("metrics", {}), "adapted": {"before": before, "after": after}},
               training_data={**manifest.get("training_data", {}),
                              "adapted_to": {"sources": [str(s) for s in benign], "flows": flows, "groups": groups}},
               extra={"config": cfg_dict, "adapted_from": str(base_dir)})
    return AdaptResult(before, after, (threshold_before, float(base.threshold_)), flows, str(output_dir), groups)


def _as_benign(spec: Any):
    """A source of the guarded network's traffic: captures and unlabelled flow files are taken as benign."""
    import dataclasses

    from ..io.readers import read_header
    from ..sources import parse_source

    try:
        parsed = parse_source(spec, where="--benign")
    except ConfigError as exc:
        if "need a label" not in str(exc):
            raise
        if isinstance(spec, dict):
            return parse_source({**spec, "label": BENIGN_CLASS}, where="--benign")
        head, sep, rest = str(spec).partition(",")
        return parse_source(f"{head}={BENIGN_CLASS}{sep}{rest}", where="--benign")
    if parsed.label is None and parsed.kind == "captures":
        return dataclasses.replace(parsed, label=BENIGN_CLASS)
    if parsed.label is None and parsed.kind == "flows" and ATTACK_COLUMN not in read_header(parsed.path):
        return dataclasses.replace(parsed, label=BENIGN_CLASS)
    return parsed
