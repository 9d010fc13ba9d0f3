"""One model trained by several processes: PyTorch DistributedDataParallel, launched by ``torchrun``.

``torchrun --nproc-per-node 2 -m flowsentinel.cli train --data ... --model-dir ...`` starts
two processes of ``flowsentinel train``; each finds its rank in the
environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` ...)
and runs :func:`train_distributed`:

* **its own shard of the data.** With as many flow files as processes (or a
  multiple), each process reads whole files of its own (file ``i`` goes to
  rank ``i % world``). Otherwise every process reads the sources and keeps
  one row in ``world``, chosen by the split unit of the protocol, so that the
  split stays sound across processes: the row for ``paper``, the feature
  vector for ``dedup`` (identical vectors stay together, so none is on both
  sides of a split), the group for ``group``. Each process then splits its
  shard by the protocol, with the same seed;
* **one agreement before training**: the classes (the union of every
  shard's), the preprocessing (fitted on rank 0 from a sample of every shard,
  at most :attr:`DistributedContext.fit_sample_rows` rows, and sent to all)
  and the class weights (from every shard's counts);
* **the one training loop** (:class:`~flowsentinel.models.loop.Trainer`),
  which asks this module's context for the DDP-wrapped module (gradients
  all-reduced in the backward pass), the rows an epoch visits (each shard
  shuffled, padded to the largest shard's length so that every process
  takes the same number of steps) and every process's validation
  predictions (so that early stopping and the best checkpoint decide the
  same everywhere);
* **evaluation on every shard's test part**, gathered to rank 0, which
  alone writes the model and the report. The saved model is an ordinary
  model directory: nothing in it says how many processes trained it but its
  ``training_data.distributed`` record.

The backend is ``gloo`` (CPU); the training loop places no tensor on a GPU,
so ``nccl`` is refused until it does (see docs/scale-out.md).

>>> [int(r) for r in shard_ranks(pd.DataFrame({"a": [1, 2, 1, 3]}), "paper", ["a"], None, 2)]
[0, 1, 0, 1]
>>> ranks = shard_ranks(pd.DataFrame({"a": [5, 7, 5, 5]}), "dedup", ["a"], None, 2)
>>> bool(ranks[0] == ranks[2] == ranks[3])
True
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError

__all__ = ["DistributedContext", "train_distributed", "shard_ranks", "BACKEND_ENV"]

log = logging.getLogger(__name__)

#: The environment variable that picks the process-group backend (``gloo``, the default).
BACKEND_ENV = "FLOWSENTINEL_DIST_BACKEND"


@dataclass
class DistributedContext:
    """This process's place among those training one model, and what they exchange.

    Attributes:
        rank, world_size, local_rank: as torchrun sets them.
        backend: the process group's backend (``gloo``).
        timeout_s: how long a collective waits for the other processes.
        fit_sample_rows: rows of all shards together that the preprocessing
            is fitted on (default 200,000: its means and frequencies settle
            long before; each shard gives its share, drawn at random).
    """

    rank: int
    world_size: int
    local_rank: int = 0
    backend: str = "gloo"
    timeout_s: float = 1800.0
    fit_sample_rows: int = 200_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "DistributedContext | None":
        """The context torchrun describes in the environment, or ``None`` for a single process.

        >>> DistributedContext.from_env({}) is None
        True
        >>> DistributedContext.from_env({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}).is_main
        False
        """
        world = int(environ.get("WORLD_SIZE", "1") or 1)
        if world <= 1:
            return None
        backend = environ.get(BACKEND_ENV, "gloo")
        if backend != "gloo":
            raise ConfigError(f"{BACKEND_ENV}={backend!r}: distributed training runs on CPUs with the 'gloo' backend; "
                              "the training loop does not place tensors on GPUs, which 'nccl' needs")
        try:
            return cls(rank=int(environ["RANK"]), world_size=world, local_rank=int(environ.get("LOCAL_RANK", "0")),
                       backend=backend)
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"WORLD_SIZE is {world} but RANK is missing or not a number ({exc}): start the "
                              "processes with torchrun") from None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ---- the process group -----------------------------------------------------------
    def start(self) -> None:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(self.backend, rank=self.rank, world_size=self.world_size,
                                    timeout=timedelta(seconds=self.timeout_s))

    def stop(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            # Every process reaches the end before any takes the group down: a process that left while
            # rank 0 was still saving aborted in gloo's teardown now and then ("terminate called without
            # an active exception", seen under load in CI-like runs).
            try:
                dist.barrier()
            except RuntimeError as exc:  # a peer already failed; its error is the one to report
                log.debug("distributed: no barrier at the end (%s)", exc)
            dist.destroy_process_group()

    def gather(self, value: Any) -> list:
        """Every process's ``value``, in rank order, in every process."""
        import torch.distributed as dist

        out: list = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value``, in every process."""
        import torch.distributed as dist

        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sum(self, values: np.ndarray) -> np.ndarray:
        """The element-wise sum of every process's ``values``."""
        import torch
        import torch.distributed as dist

        tensor = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64).copy())
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        out = tensor.numpy()
        return out.astype(np.asarray(values).dtype) if np.asarray(values).dtype.kind in "iu" else out

    # ---- what the training loop asks (flowsentinel.models.loop.Trainer) --------------------------
    def wrap(self, module):
        """The module whose backward pass averages the gradients of every process."""
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(module)

    def epoch_order(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """This shard's rows in the order an epoch visits them, as many as the largest shard has.

        Every process must take the same number of steps (each step's
        all-reduce waits for all); a smaller shard repeats some of its rows.
        """
        sizes = self.gather(n)
        if min(sizes) < 2:  # raised in every process, so that none waits for the others
            raise DataError(f"a process has {min(sizes)} training flow(s): too few to train on; use fewer processes")
        longest = max(sizes)
        order = rng.permutation(n)
        return order if n == longest else np.resize(order, longest)

    def gather_validation(self, y: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every process's validation labels and logits, so that every process computes the same metrics."""
        parts = self.gather((np.asarray(y), np.asarray(logits, dtype=np.float32)))
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    # ---- what the detector asks (flowsentinel.models.deep.DeepDetector._fit) ----------------------
    def all_labels(self, y: np.ndarray) -> np.ndarray:
        """The labels of every shard, each once."""
        labels = set()
        for part in self.gather(sorted(set(np.asarray(y, dtype=object).tolist()))):
            labels.update(part)
        return np.asarray(sorted(labels), dtype=object)

    def fitted_features(self, config, X: pd.DataFrame):
        """The preprocessing fitted on rank 0 from a sample of every shard, the same in every process."""
        import torch.distributed as dist

        from ..features import FeaturePipeline

        share = max(1, self.fit_sample_rows // self.world_size)
        sample = X if len(X) <= share else X.sample(n=share, random_state=self.rank)
        parts: list | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(sample, parts, dst=0)
        state = FeaturePipeline(config).fit(pd.concat(parts, ignore_index=True)).to_dict() if self.is_main else None
        return FeaturePipeline.from_dict(self.broadcast(state))


# ---- shards ---------------------------------------------------------------------------------------------


def shard_ranks(flows: pd.DataFrame, protocol: str, columns: Sequence[str], groups: np.ndarray | None,
                world_size: int) -> np.ndarray:
    """The rank that keeps each row: by row for ``paper``, by feature vector for ``dedup``, by group for ``group``."""
    if protocol == "dedup":
        keys = pd.util.hash_pandas_object(flows[list(columns)], index=False).to_numpy()
    elif protocol == "group" and groups is not None:
        keys = pd.util.hash_pandas_object(pd.Series(np.asarray(groups, dtype=object).astype(str)), index=False).to_numpy()
    else:
        return np.arange(len(flows)) % world_size
    return (keys % np.uint64(world_size)).astype(np.int64)


def _load_shard(cfg, context: DistributedContext, rejects_dir: Path | None):
    """This process's shard of the training sources, and how it was cut (``files`` or ``rows``)."""
    from ..features import input_columns
    from ..schema import detect_schema
    from ..sources import parse_sources
    from .experiment import load_dataset

    specs = parse_sources(cfg.run.data, base=cfg.run.data_base) if cfg.run.data else []
    options = dict(synthetic_flows=cfg.run.synthetic_flows, seed=cfg.run.seed, max_rows=cfg.run.max_rows)
    world, rank = context.world_size, context.rank
    if specs and all(s.kind == "flows" for s in specs) and len(specs) % world == 0:
        mine = [s for i, s in enumerate(specs) if i % world == rank]
        return load_dataset(mine, rejects_dir=rejects_dir, progress=context.is_main, **options), "files"
    if not context.is_main:
        # Every process reads every source here: only rank 0 keeps their bad rows.
        rejects_dir = Path(tempfile.mkdtemp(prefix=f"flowsentinel-rank{rank}-"))
    data = load_dataset(specs or None, rejects_dir=rejects_dir, progress=context.is_main, **options)
    columns = input_columns(detect_schema(list(data.flows.columns)), cfg.features)
    keep = np.flatnonzero(shard_ranks(data.flows, cfg.run.protocol, columns, data.groups, world) == rank)
    shard = dataclasses.replace(data, flows=data.flows.iloc[keep].reset_index(drop=True),
                                groups=None if data.groups is None else data.groups[keep])
    return shard, "rows"


def _gathered_metrics(detector, prepared, context: DistributedContext) -> tuple[dict, dict | None]:
    """Test metrics over every shard's test part (computed on rank 0; ``({}, None)`` elsewhere)."""
    from ..evaluation.metrics import binary_curves, compute_metrics
    from .experiment import task_labels

    t0 = time.perf_counter()
    proba = detector.predict_proba(prepared.test)
    seconds = time.perf_counter() - t0
    binary = prepared.task == "binary"
    y = task_labels(prepared.test, "binary" if binary else prepared.task)
    parts = context.gather((y, detector.labels_from_proba(proba), detector.scores_from_proba(proba), seconds))
    if not context.is_main:
        return {}, None
    y, pred, scores = (np.concatenate([p[i] for p in parts]) for i in range(3))
    metrics = compute_metrics(y, pred, scores, majority_class=prepared.majority)
    metrics["scoring_flows_per_s"] = len(y) / max(max(p[3] for p in parts), 1e-9)
    metrics["threshold"] = float(detector.threshold_)
    return metrics, binary_curves(y, scores)


def _agree_on_threshold(detector, prepared, context: DistributedContext) -> None:
    """A threshold set for a false-alarm rate uses the benign validation flows of every shard."""
    from ..schema import ATTACK_COLUMN, BENIGN_CLASS

    policy = detector.threshold_policy()
    if not policy.needs_validation:
        return
    benign = prepared.val[prepared.val[ATTACK_COLUMN].to_numpy(dtype=object) == BENIGN_CLASS]
    scores = detector.decision_function(benign) if len(benign) else np.zeros(0)
    detector.threshold_ = policy.fit(np.concatenate(context.gather(scores)))


def train_distributed(cfg, model_dir: str | Path | None, report_dir: str | Path | None,
                      context: DistributedContext) -> dict | None:
    """Train the configured deep detector with every process of ``context``; rank 0 saves and reports.

    Returns the run's result on rank 0 (as :func:`~flowsentinel.training.run.train_and_evaluate`), ``None`` elsewhere.
    """
    context.start()
    try:
        return _train(cfg, model_dir, report_dir, context)
    finally:
        context.stop()


def _train(cfg, model_dir, report_dir, context: DistributedContext) -> dict | None:
    from ..config import build_detector
    from ..models.deep import DeepDetector
    from ..models.registry import short_name
    from .experiment import prepare, task_labels
    from .run import report_and_save, report_folder

    if not context.is_main:
        # One voice: the other processes say only what goes wrong.
        logging.getLogger("flowsentinel").setLevel(logging.WARNING)
    report_dir = report_folder(model_dir, report_dir)
    detector = build_detector(cfg)
    if not isinstance(detector, DeepDetector):
        raise ConfigError(f"{short_name(detector)} trains in one process: distributed training (torchrun) is for the "
                          "deep models")
    # batch_size stays per process (PyTorch's convention): the network's batch normalisation then sees
    # batches of the size it sees in one process. Halving it instead (the same global batch) changed the
    # scores on the held-out flows as much as halving it in one process did (docs/scale-out.md).
    detector.set_params(distributed=context, verbose=bool(detector.verbose and context.is_main))
    detector.check_params()
    if cfg.run.references and context.is_main:
        log.info("references (%s) are not trained in a distributed run; train them with 'flowsentinel train' in "
                 "one process", ", ".join(cfg.run.references))
    data, how = _load_shard(cfg, context, report_dir)
    prepared = prepare(data, task=cfg.run.task, protocol=cfg.run.protocol, seed=cfg.run.seed,
                       fractions=cfg.run.fractions, features=cfg.features)
    train_counts = Counter()
    for part in context.gather(Counter(task_labels(prepared.train, prepared.task).tolist())):
        train_counts.update(part)
    sizes = context.gather({"n_flows": len(data.flows), "n_train": len(prepared.train), "n_val": len(prepared.val),
                            "n_test": len(prepared.test)})
    log.info("process %d of %d: %d flows (%s shard), %d for training", context.rank, context.world_size,
             len(data.flows), how, len(prepared.train))
    t0 = time.perf_counter()
    detector.fit(prepared.train, X_val=prepared.val)
    _agree_on_threshold(detector, prepared, context)
    fit_seconds = time.perf_counter() - t0
    detector.n_train_flows_ = sum(s["n_train"] for s in sizes)
    prepared = dataclasses.replace(prepared, majority=str(max(sorted(train_counts), key=train_counts.__getitem__)))
    metrics, curve = _gathered_metrics(detector, prepared, context)
    if not context.is_main:
        return None
    detector.set_params(distributed=None)
    metrics["fit_seconds"] = fit_seconds
    total = {k: sum(s[k] for s in sizes) for k in sizes[0]}
    record = {"world_size": context.world_size, "backend": context.backend, "shards": how, "per_process": sizes}
    prepared = dataclasses.replace(prepared, split_info={**prepared.split_info, **{k: total[k] for k in
                                                                                  ("n_train", "n_val", "n_test")},
                                                         "distributed": record})
    shards = (f"{data.description}; one row in {context.world_size} to each process" if how == "rows" else
              f"rank 0's files: {data.description}; {total['n_flows']:,} flows in the files of {context.world_size} "
              "processes")
    data = dataclasses.replace(data, description=shards,
                               info={**data.info, "distributed": record, "n_flows_all_processes": total["n_flows"]})
    main = {"name": short_name(detector), "detector": detector, "metrics": metrics, "curve": curve}
    return report_and_save(cfg, detector, main, {}, {main["name"]: curve}, data, prepared, model_dir, report_dir)
