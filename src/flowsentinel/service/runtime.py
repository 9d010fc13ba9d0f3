"""The parts of a running service, built once from its :class:`ServiceConfig`.

:class:`Runtime` owns the metrics, the tokens, the model holder, the alert
file and the scorer; the HTTP app, the producers and the daemon's signal
handlers all act through it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import ModelLoadError
from .config import ServiceConfig
from .limits import Refused
from .metrics import ServiceMetrics
from .model import LoadedModel, ModelHolder, load_checked
from .scorer import Scorer
from .sinks import AlertFile
from .tokens import TokenStore

__all__ = ["Runtime"]

log = logging.getLogger("flowsentinel.service")


class Runtime:
    """Everything a running service holds.

    Building it loads and warms the model, reads the tokens and opens the
    alert file, so that a service that cannot do its work fails before it
    listens.
    """

    def __init__(self, config: ServiceConfig):
        self.config = config
        self.metrics = ServiceMetrics()
        self.tokens = TokenStore(config.token_file) if config.token_file is not None else None
        if self.tokens is not None and not len(self.tokens):
            log.warning("%s holds no tokens: every request but /healthz will be refused", config.token_file)
        config.check_exposure(has_tokens=self.tokens is not None and len(self.tokens) > 0)
        if self.tokens is None:
            log.warning("serving without tokens on %s: every client that reaches the port may score and swap models",
                        config.host)
        self.holder = ModelHolder(self._load(config.model_dir))
        self._publish(self.holder.current)
        self.sink = None
        if config.alerts_path is not None:
            self.sink = AlertFile(config.alerts_path, config.rotate_bytes, config.rotate_keep,
                                  on_rotate=self.metrics.rotations.inc, on_reopen=self.metrics.reopens.inc)
        self.scorer = Scorer(self.holder, self.metrics, self.sink, workers=config.workers,
                             batch_flows=config.batch_flows).start()
        self.draining = False

    def _load(self, path) -> LoadedModel:
        c = self.config
        return load_checked(path, engine=c.engine, threads=c.threads, batch_flows=c.batch_flows)

    def _publish(self, model: LoadedModel) -> None:
        self.metrics.set_model(model.name, model.version, model.digest)

    def allowed_model_path(self, given: str) -> Path:
        """The model folder ``given`` names, resolved inside the model root, or :class:`Refused`."""
        if self.config.model_root is None:
            raise Refused(403, "model_path", "model swaps over HTTP are off: start the service with --model-root DIR")
        root = Path(self.config.model_root).resolve()
        candidate = Path(given)
        # resolve() follows every symbolic link and '..', so what is compared
        # is the folder that would really be read.
        resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
        if not resolved.is_relative_to(root) or resolved == root:
            raise Refused(403, "model_path", f"{given!r} is not a folder inside the model root")
        if not resolved.is_dir():
            raise Refused(404, "model_path", f"{given!r}: no such model folder under the model root")
        return resolved

    def swap_model(self, path: Path, allow_new_columns: bool = False) -> tuple[LoadedModel, LoadedModel]:
        """Load, check and swap in the model at ``path``; the old one stays on any failure."""

        def load() -> LoadedModel:
            new = self._load(path)
            current = self.holder.current
            extra = [c for c in new.input_columns if c not in set(current.input_columns)]
            if extra and not allow_new_columns:
                raise ModelLoadError(f"{path}: the new model needs column(s) the current one does not "
                                     f"({', '.join(extra)}); clients that send what works now would get 422. "
                                     'Send "allow_new_columns": true to swap anyway')
            return new

        old, new = self.holder.swap(load)
        self._publish(new)
        self.metrics.swaps.labels("ok").inc()
        return old, new

    def ready(self) -> tuple[bool, str]:
        if self.draining:
            return False, "draining: the service is shutting down"
        return True, "model loaded and warm"

    def reload(self) -> None:
        """SIGHUP: reopen the alert file and read the tokens again."""
        if self.sink is not None:
            self.sink.reopen()
        if self.tokens is not None:
            try:
                self.tokens.reload()
            except Exception as exc:
                log.error("%s: not reloaded, the tokens already loaded stay: %s", self.tokens.path, exc)

    def close(self, timeout: float | None = None) -> bool:
        """Score what is queued, then close the alert file; ``False`` if the queue did not drain in time."""
        self.draining = True
        drained = self.scorer.close(timeout)
        if self.sink is not None:
            self.sink.close()
        return drained
