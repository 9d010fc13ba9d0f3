"""The service's Prometheus metrics, in a registry of their own.

Every label has a bounded set of values: routes are the API's (anything else
is ``other``), classes are the model's, error kinds and refusal reasons are
the closed sets below. Client addresses and token names are never labels.

>>> m = ServiceMetrics()
>>> m.refused("busy")
>>> b"flowsentinel_refusals_total{reason=\\"busy\\"} 1.0" in m.render()
True
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["ServiceMetrics", "ROUTES", "REFUSALS", "ERRORS", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Route labels; other paths are counted as ``other``.
ROUTES = ("/v1/score", "/v1/model", "/healthz", "/readyz", "/metrics")

#: Why a request or connection was refused before it was served.
REFUSALS = (
    "no_token", "bad_token", "forbidden_scope", "token_in_url", "body_too_large", "too_many_flows",
    "body_timeout", "header_timeout", "request_timeout", "busy", "too_many_connections", "model_path",
)

#: Why a served request failed.
ERRORS = ("bad_body", "bad_row", "missing_columns", "unsupported_media", "not_found", "model_refused",
          "sink_write", "producer", "internal")

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServiceMetrics:
    """Counters, gauges and histograms of one running service."""

    def __init__(self):
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("flowsentinel_http_requests", "HTTP requests answered",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("flowsentinel_http_request_duration_seconds", "Time from request head to answer",
                                 ["route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("flowsentinel_http_requests_in_flight", "Scoring and admin requests in progress",
                               registry=r)
        self.flows = Counter("flowsentinel_flows_scored", "Flows scored", ["source"], registry=r)
        self.alerts = Counter("flowsentinel_alerts", "Flows at or above the alert threshold", ["class"], registry=r)
        self.batch = Histogram("flowsentinel_scoring_batch_seconds", "Time of one scoring batch (network call and verdicts)",
                               buckets=_LATENCY_BUCKETS, registry=r)
        self.queue = Gauge("flowsentinel_scoring_queue_frames", "Frames waiting to be scored", registry=r)
        self.errors = Counter("flowsentinel_errors", "Requests and frames that failed, by kind", ["kind"], registry=r)
        self.refusals = Counter("flowsentinel_refusals", "Requests and connections refused, by reason", ["reason"],
                                registry=r)
        self.model = Gauge("flowsentinel_model_info", "The model being scored with (1 for the loaded one)",
                           ["name", "version", "digest"], registry=r)
        self.swaps = Counter("flowsentinel_model_swaps", "Model swaps asked for, by result", ["result"], registry=r)
        self.alert_records = Counter("flowsentinel_alert_records_written", "EVE records written to the alert file",
                                     registry=r)
        self.rotations = Counter("flowsentinel_alert_file_rotations", "Alert file rotations by size", registry=r)
        self.reopens = Counter("flowsentinel_alert_file_reopens", "Alert file reopens (SIGHUP)", registry=r)
        for reason in REFUSALS:
            self.refusals.labels(reason)
        for kind in ERRORS:
            self.errors.labels(kind)
        self._model_labels: tuple[str, str, str] | None = None

    @staticmethod
    def route(path: str) -> str:
        return path if path in ROUTES else "other"

    def refused(self, reason: str) -> None:
        self.refusals.labels(reason).inc()

    def failed(self, kind: str) -> None:
        self.errors.labels(kind).inc()

    def set_model(self, name: str, version: str, digest: str) -> None:
        if self._model_labels is not None:
            self.model.remove(*self._model_labels)
        self._model_labels = (name, version, digest)
        self.model.labels(name, version, digest).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
