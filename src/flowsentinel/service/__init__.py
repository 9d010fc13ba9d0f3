"""``flowsentinel serve``: a long-running scoring service.

One process holds a model (:mod:`.model`), scores every frame of flows that
reaches it through one scorer (:mod:`.scorer`), whether the frame came over
HTTP (:mod:`.app`), from the live meter or from a collector, writes EVE
alerts to a file (:mod:`.sinks`), and lets in only callers with a token
(:mod:`.tokens`) within the limits of :mod:`.limits`. :mod:`.daemon` runs it
all and handles signals; :mod:`.client` is the Python client. The HTTP
dependencies are the ``service`` extra: ``pip install 'flowsentinel[service]'``.

See ``docs/service.md``.
"""

from .config import Limits, ServiceConfig

__all__ = ["Limits", "ServiceConfig"]
