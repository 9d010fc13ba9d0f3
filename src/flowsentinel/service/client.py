"""A small client of the scoring service, for scripts and ``flowsentinel score --url``.

::

    with ScoreClient("https://nids.example:8750", token_file="/etc/flowsentinel/my.token") as client:
        verdicts = client.score(frame)          # a DataFrame of NF flows
        print(verdicts[["score", "class", "alert"]].head())

Flows travel as Arrow IPC (the most compact of the body formats, and typed);
``fmt="json"`` sends JSON instead. Every refusal or failure raises
:class:`~flowsentinel.errors.ServiceError` with the service's status, kind
and message; the token is sent in the ``Authorization`` header only.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd

from ..errors import ConfigError, ServiceError

__all__ = ["ScoreClient", "TOKEN_ENV", "read_token"]

#: The setting that holds a token for the client, when no token file is given.
TOKEN_ENV = "FLOWSENTINEL_TOKEN"


def read_token(token_file: str | Path | None = None) -> str | None:
    """The token in ``token_file`` (its first line), else ``$FLOWSENTINEL_TOKEN``, else ``None``."""
    if token_file is not None:
        try:
            text = Path(token_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{token_file}: cannot read the token: {exc.strerror}") from None
        if not text:
            raise ConfigError(f"{token_file}: the token file is empty")
        return text.splitlines()[0].strip()
    return os.environ.get(TOKEN_ENV) or None


def _body(frame: pd.DataFrame, fmt: str) -> tuple[bytes, str]:
    if fmt == "arrow":
        import pyarrow as pa

        table = pa.Table.from_pandas(frame, preserve_index=False)
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue(), "application/vnd.apache.arrow.stream"
    if fmt == "json":
        return frame.to_json(orient="records").encode(), "application/json"
    if fmt == "csv":
        return frame.to_csv(index=False).encode(), "text/csv"
    raise ConfigError(f"client body format must be arrow, json or csv, got {fmt!r}")


class ScoreClient:
    """Talks to one service.

    Args:
        url: the service's base URL (``http://127.0.0.1:8750``).
        token: a bearer token; ``None`` reads ``token_file``, else ``$FLOWSENTINEL_TOKEN``.
        token_file: a file whose first line is the token.
        timeout: seconds for each request.
        verify: TLS: ``True`` (system CAs), a CA bundle path, or ``False``.
    """

    def __init__(self, url: str, token: str | None = None, *, token_file: str | Path | None = None,
                 timeout: float = 30.0, verify: bool | str = True):
        self.url = url.rstrip("/")
        self.token = token if token is not None else read_token(token_file)
        self.timeout = timeout
        self.verify = verify
        self._http = None

    def _client(self):
        if self._http is None:
            import httpx

            headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
            verify = self.verify
            if isinstance(verify, (str, Path)):
                import ssl

                verify = ssl.create_default_context(cafile=str(verify))
            self._http = httpx.Client(base_url=self.url, headers=headers, timeout=self.timeout, verify=verify)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> "ScoreClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs) -> dict:
        """One request; the decoded JSON answer, or :class:`ServiceError`."""
        import httpx

        try:
            response = self._client().request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceError(f"{self.url}{path}: {type(exc).__name__}: {exc}") from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code >= 400:
            err = (payload or {}).get("error", {}) if isinstance(payload, dict) else {}
            raise ServiceError(f"{self.url}{path}: {response.status_code} {err.get('kind', response.reason_phrase)}: "
                               f"{err.get('message', response.text[:200])}")
        return payload

    def score_raw(self, frame: pd.DataFrame, fmt: str = "arrow") -> dict:
        """The service's whole answer for one batch: model, counts, verdicts."""
        body, media = _body(frame, fmt)
        return self.request("POST", "/v1/score", content=body, headers={"content-type": media})

    def score(self, frame: pd.DataFrame, fmt: str = "arrow") -> pd.DataFrame:
        """One row per flow, in order: ``row``, ``score``, ``class``, ``alert`` and ``eve`` (alerts only)."""
        answer = self.score_raw(frame, fmt)
        verdicts = pd.DataFrame(answer["verdicts"], columns=["row", "score", "class", "alert", "eve"])
        verdicts.attrs["model"] = answer["model"]
        return verdicts

    def model(self) -> dict:
        return self.request("GET", "/v1/model")

    def swap(self, model_dir: str, allow_new_columns: bool = False) -> dict:
        """Ask the service to load ``model_dir`` (under its model root) and score with it (admin token)."""
        return self.request("PUT", "/v1/model", json={"model_dir": str(model_dir), "allow_new_columns": allow_new_columns})

    def ready(self) -> bool:
        try:
            return bool(self.request("GET", "/readyz").get("ready"))
        except ServiceError:
            return False
