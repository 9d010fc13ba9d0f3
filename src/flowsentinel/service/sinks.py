"""The alert file: EVE JSON lines appended, reopened on SIGHUP, rotated by size when asked.

Filebeat, Wazuh and the like tail the file. With logrotate, the file is
renamed away and the service told (SIGHUP) to :meth:`AlertFile.reopen` the
name; with ``rotate_bytes`` the service rotates by itself
(``alerts.jsonl`` -> ``alerts.jsonl.1`` -> ... -> ``.keep``). Each write is
whole lines, flushed at once, so a tailer never reads half a record.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "alerts.jsonl"
>>> sink = AlertFile(path, rotate_bytes=1024, keep=2)
>>> for _ in range(30):
...     sink.write('{"event_type": "alert", "pad": "' + "x" * 60 + '"}\\n')
>>> sink.close()
>>> sorted(p.name for p in path.parent.iterdir())
['alerts.jsonl', 'alerts.jsonl.1', 'alerts.jsonl.2']
>>> all(p.stat().st_size <= 1024 for p in path.parent.iterdir())
True
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from ..errors import OutputError

__all__ = ["AlertFile"]

log = logging.getLogger(__name__)


class AlertFile:
    """An append-only EVE file.

    Args:
        path: the file; its folder must exist.
        rotate_bytes: rotate before a write that would take the file past
            this size; ``None``: never.
        keep: rotated files kept (``.1`` is the newest).
        on_rotate, on_reopen: called after each rotation or reopen (metrics).
    """

    def __init__(self, path: str | Path, rotate_bytes: int | None = None, keep: int = 5, *,
                 on_rotate=None, on_reopen=None):
        self.path = Path(path)
        self.rotate_bytes = rotate_bytes
        self.keep = keep
        self.on_rotate, self.on_reopen = on_rotate, on_reopen
        self._lock = threading.Lock()
        self._fh = None
        self._failing = False
        with self._lock:
            self._open()

    def _open(self) -> None:
        if not self.path.parent.is_dir():
            raise OutputError(f"{self.path}: the alert file's folder does not exist")
        try:
            self._fh = open(self.path, "a", encoding="utf-8", newline="\n")
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot open the alert file: {exc.strerror}") from None

    def write(self, text: str) -> None:
        """Append whole lines; rotate first if they would take the file past its size.

        A file is larger than ``rotate_bytes`` only when one write alone is.
        """
        if not text:
            return
        with self._lock:
            if self._fh is None:
                raise OutputError(f"{self.path}: the alert file is closed")
            size = self._fh.tell()
            if self.rotate_bytes is not None and size and size + len(text) > self.rotate_bytes:
                self._rotate()
            try:
                self._fh.write(text)
                self._fh.flush()
            except OSError as exc:
                if not self._failing:
                    log.error("%s: cannot write alerts: %s", self.path, exc.strerror)
                self._failing = True
                raise OutputError(f"{self.path}: cannot write alerts: {exc.strerror}") from None
            if self._failing:
                log.warning("%s: writing alerts again", self.path)
                self._failing = False

    def _rotate(self) -> None:
        self._fh.close()
        for i in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._open()
        log.info("%s: rotated (size limit %d bytes)", self.path, self.rotate_bytes)
        if self.on_rotate is not None:
            self.on_rotate()

    def reopen(self) -> None:
        """Close and open the file name again (after logrotate moved the file away)."""
        with self._lock:
            if self._fh is not None:
                self._fh.close()
            self._open()
        log.info("%s: reopened", self.path)
        if self.on_reopen is not None:
            self.on_reopen()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
