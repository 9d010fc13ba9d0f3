"""The HTTP API: routes, the access guard in front of them, and the answers.

Routes (every one but ``/healthz`` needs ``Authorization: Bearer TOKEN``):

===================  =======  ==================================================
``POST /v1/score``   score    flows in, one verdict per flow out, in order
``GET /v1/model``    score    what is loaded (identity, engine, manifest)
``PUT /v1/model``    admin    ``{"model_dir": "..."}``: load, check, swap in
``GET /healthz``     none     the process answers
``GET /readyz``      score    a model is loaded and warm, and not draining
``GET /metrics``     score    Prometheus text format
===================  =======  ==================================================

Errors come back as ``{"error": {"status", "kind", "message", ...}}``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import FlowsentinelError, MissingColumnsError, ModelLoadError
from .limits import Refused, client_of, log_refusal, read_body
from .metrics import CONTENT_TYPE
from .tokens import Identity, looks_like_token
from .validate import BadFlows, TooManyFlows, UnsupportedMedia, parse_flows, validate_flows

__all__ = ["build_app"]

log = logging.getLogger("flowsentinel.service")

# Query parameters that carry credentials in the wild; any of them is refused
# even when its value is not a token, since it says a client is misconfigured.
_CREDENTIAL_PARAMS = {"token", "access_token", "bearer", "api_key", "apikey", "key", "auth", "authorization",
                      "password", "secret"}
_OPEN = Identity("anonymous", "admin")
_JSON = "application/json"
# A model swap request is a short JSON object.
_MAX_ADMIN_BODY = 64 * 1024
# Bodies up to this size are parsed in the event loop's thread: a thread hop
# costs more than parsing a few hundred flows, and under the GIL a worker
# thread would not parse them any sooner. Larger ones go to a worker thread
# so that the loop keeps answering.
_INLINE_BODY = 256 * 1024


def _error(status: int, kind: str, message: str, headers: dict | None = None, **extra) -> Response:
    body = orjson.dumps({"error": {"status": status, "kind": kind, "message": message, **extra}})
    return Response(body, status, headers=headers, media_type=_JSON)


def _json(payload, status: int = 200) -> Response:
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), status, media_type=_JSON)


class Guard:
    """ASGI middleware: credentials, scopes, concurrency, the request deadline, and request metrics."""

    #: (method, path) -> scope needed; ``None``: open to all.
    SCOPES = {("GET", "/healthz"): None, ("PUT", "/v1/model"): "admin"}
    #: Requests counted against the concurrency limit.
    LIMITED = {("POST", "/v1/score"), ("PUT", "/v1/model")}

    def __init__(self, app, runtime):
        self.app = app
        self.runtime = runtime
        self.in_flight = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rt = self.runtime
        method, path = scope["method"], scope["path"]
        route = rt.metrics.route(path)
        t0 = time.perf_counter()
        status = [500]
        started = [False]

        async def tracked_send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                started[0] = True
            await send(message)

        limited = (method, path) in self.LIMITED
        counted = False
        try:
            try:
                identity = self._check(scope, method, path)
                scope.setdefault("state", {})["identity"] = identity
                if limited:
                    if self.in_flight >= rt.config.limits.max_concurrency:
                        raise Refused(503, "busy", f"{self.in_flight} requests in progress, at most "
                                      f"{rt.config.limits.max_concurrency}; try again shortly", {"retry-after": "1"})
                    self.in_flight += 1
                    counted = True
                    rt.metrics.in_flight.inc()
                async with asyncio.timeout(rt.config.limits.request_timeout):
                    await self.app(scope, receive, tracked_send)
            except TimeoutError:
                if started[0]:
                    raise
                raise Refused(503, "request_timeout", f"no answer within {rt.config.limits.request_timeout:g} s; "
                              "the service is overloaded: try again later", {"retry-after": "1"}) from None
        except Refused as exc:
            await refusal(rt, scope, exc)(scope, receive, tracked_send)
        finally:
            if counted:
                self.in_flight -= 1
                rt.metrics.in_flight.dec()
            elapsed = time.perf_counter() - t0
            rt.metrics.requests.labels(route, method, str(status[0])).inc()
            rt.metrics.latency.labels(route).observe(elapsed)
            log.debug("%s %s %s from %s in %.1f ms", method, path, status[0], client_of(scope), elapsed * 1000)

    def _check(self, scope, method: str, path: str) -> Identity | None:
        """Who is asking, or :class:`Refused`; the query string never carries credentials."""
        rt = self.runtime
        query = scope.get("query_string", b"")
        if query:
            for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
                if key.lower() in _CREDENTIAL_PARAMS or looks_like_token(value) or (
                        rt.tokens is not None and rt.tokens.verify(value) is not None):
                    raise Refused(400, "token_in_url", "credentials in the URL are refused (URLs end up in logs and "
                                  "histories); send them as 'Authorization: Bearer TOKEN'")
        needed = self.SCOPES.get((method, path), "score")
        if needed is None:
            return None
        if rt.tokens is None:
            return _OPEN
        header = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        challenge = {"www-authenticate": 'Bearer realm="flowsentinel"'}
        if not header:
            raise Refused(401, "no_token", "this route needs 'Authorization: Bearer TOKEN'", challenge)
        kind, _, token = header.partition(" ")
        identity = rt.tokens.verify(token.strip()) if kind.lower() == "bearer" else None
        if identity is None:
            raise Refused(401, "bad_token", "the bearer token is not valid", challenge)
        if not identity.allows(needed):
            scope.setdefault("state", {})["identity"] = identity
            raise Refused(403, "forbidden_scope", f"{method} {path} needs a token with scope '{needed}'")
        return identity


def refusal(rt, scope, exc: Refused) -> Response:
    """Count and log a refusal once, and the answer that says why."""
    who = getattr(scope.get("state", {}).get("identity"), "name", None)
    log_refusal(rt.metrics, exc.reason, exc.status, client_of(scope), f"{scope['method']} {scope['path']}",
                exc.message, None if who == _OPEN.name else who)
    return _error(exc.status, exc.reason, exc.message, exc.headers)


def _prepare(body: bytes, content_type: str | None, model, max_flows: int):
    """Parse, count, check the columns and validate."""
    flows = parse_flows(body, content_type, max_flows)
    if len(flows):
        model.check_columns(flows.names, "request body")
        flows = validate_flows(flows)
    return flows


def _verdicts(scored) -> bytes:
    v = scored.verdicts
    eve = iter(scored.eve)
    items = []
    for i, (score, cls, alert) in enumerate(zip(v.scores.tolist(), v.classes.tolist(), v.alerts.tolist()), 1):
        item = {"row": i, "score": round(score, 6), "class": cls, "alert": alert}
        if alert:
            item["eve"] = orjson.Fragment(next(eve))
        items.append(item)
    return orjson.dumps({"model": scored.model.identity(), "n_flows": len(v), "n_alerts": int(v.alerts.sum()),
                         "verdicts": items})


def build_app(runtime) -> Starlette:
    """The ASGI application over a :class:`~flowsentinel.service.runtime.Runtime`."""
    rt = runtime
    limits = rt.config.limits

    def failure(kind: str, status: int, exc: Exception, **extra) -> Response:
        rt.metrics.failed(kind)
        return _error(status, kind, str(exc), **extra)

    async def score(request: Request) -> Response:
        body = await read_body(request.receive, request.headers, limits.max_body_bytes, limits.body_timeout)
        model = rt.holder.current
        ctype = request.headers.get("content-type")
        try:
            if len(body) <= _INLINE_BODY:
                flows = _prepare(body, ctype, model, limits.max_flows)
            else:
                flows = await run_in_threadpool(_prepare, body, ctype, model, limits.max_flows)
        except TooManyFlows as exc:
            raise Refused(413, "too_many_flows", str(exc)) from None
        except UnsupportedMedia as exc:
            return failure("unsupported_media", 415, exc)
        except BadFlows as exc:
            return failure("bad_row" if exc.row is not None else "bad_body", 400, exc, row=exc.row,
                           column=exc.column, reason=exc.reason)
        except MissingColumnsError as exc:
            return failure("missing_columns", 422, exc, missing=model.missing_columns(parse_flows(body, ctype).names))
        if not len(flows):
            return Response(orjson.dumps({"model": model.identity(), "n_flows": 0, "n_alerts": 0, "verdicts": []}),
                            media_type=_JSON)
        scored = await asyncio.wrap_future(rt.scorer.submit(flows, "http", model=model))
        return Response(_verdicts(scored), media_type=_JSON)

    async def get_model(request: Request) -> Response:
        return _json(rt.holder.current.info())

    async def put_model(request: Request) -> Response:
        body = await read_body(request.receive, request.headers, _MAX_ADMIN_BODY, limits.body_timeout)
        try:
            asked = orjson.loads(body)
            given = asked["model_dir"]
            if not isinstance(given, str) or not given:
                raise TypeError
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return failure("bad_body", 400, ValueError('expected {"model_dir": "PATH"} (a folder under the model root)'))
        path = rt.allowed_model_path(given)
        identity = request.scope.get("state", {}).get("identity")
        try:
            old, new = await run_in_threadpool(rt.swap_model, path, bool(asked.get("allow_new_columns", False)))
        except ModelLoadError as exc:
            rt.metrics.swaps.labels("refused").inc()
            log.warning("model swap to %s refused (asked by %s from %s): %s", path, getattr(identity, "name", "?"),
                        client_of(request.scope), exc)
            return failure("model_refused", 422, exc)
        log.info("model swapped from %s (%s) to %s (%s), asked by %s from %s", old.version, old.digest, new.version,
                 new.digest, getattr(identity, "name", "?"), client_of(request.scope))
        return _json({"old": old.identity(), "new": new.identity(), "model_dir": str(new.model_dir)})

    async def healthz(request: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ready, why = rt.ready()
        return _json({"ready": ready, "reason": why, "model": rt.holder.current.identity()}, 200 if ready else 503)

    async def metrics(request: Request) -> Response:
        return Response(rt.metrics.render(), media_type=CONTENT_TYPE)

    def guarded(handler):
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except Refused:
                raise
            except FlowsentinelError as exc:
                return failure("bad_body", 400, exc)
            except Exception as exc:
                log.error("%s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, exc,
                          exc_info=True)
                return failure("internal", 500, RuntimeError("internal error; the service log has the details"))

        return endpoint

    async def not_found(request: Request, exc) -> Response:
        rt.metrics.failed("not_found")
        return _error(exc.status_code, "not_found", f"no route {request.method} {request.url.path}")

    routes = [
        Route("/v1/score", guarded(score), methods=["POST"]),
        Route("/v1/model", guarded(get_model), methods=["GET"]),
        Route("/v1/model", guarded(put_model), methods=["PUT"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    async def refused(request: Request, exc: Refused) -> Response:
        return refusal(rt, request.scope, exc)

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found, Refused: refused})
    return Guard(app, runtime)
