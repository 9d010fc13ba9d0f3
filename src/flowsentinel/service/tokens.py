"""Bearer tokens: made at random, stored as salted SHA-256 hashes, checked in constant time.

A token is 256 random bits (``fs_`` and 43 URL-safe characters), so one
round of SHA-256 over a per-token salt and the token is enough to keep the
file useless to whoever reads it: there is no password to guess, and a slow
hash (scrypt, PBKDF2) would cost every request milliseconds for nothing.

The token file has one line per token, ``NAME SCOPE sha256:SALT:DIGEST``
(hex), and ``#`` comments. Scopes: ``score`` (score flows, read the model,
readiness and metrics) and ``admin`` (all that, and swap the model).

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "tokens"
>>> secret = add_token(path, "siem", "score")
>>> store = TokenStore(path)
>>> store.verify(secret).name, store.verify(secret).scope
('siem', 'score')
>>> store.verify(secret + "x") is None, store.verify("") is None
(True, True)
>>> secret in path.read_text()
False
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

__all__ = ["SCOPES", "Identity", "TokenStore", "add_token", "revoke_token", "list_tokens", "new_token", "looks_like_token"]

log = logging.getLogger(__name__)

#: Scopes a token may have; ``admin`` includes everything ``score`` may do.
SCOPES = ("score", "admin")
_PREFIX = "fs_"
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
# 32 random bytes in URL-safe base64 are 43 characters.
_TOKEN = re.compile(r"^fs_[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class Identity:
    """Who a verified token belongs to (never the token itself)."""

    name: str
    scope: str

    def allows(self, scope: str) -> bool:
        return self.scope == "admin" or self.scope == scope


@dataclass(frozen=True)
class _Entry:
    name: str
    scope: str
    salt: bytes
    digest: bytes


def new_token() -> str:
    """A fresh random token."""
    return _PREFIX + secrets.token_urlsafe(32)


def _digest(salt: bytes, token: str) -> bytes:
    return hashlib.sha256(salt + token.encode("utf-8", "surrogatepass")).digest()


def _parse(path: Path) -> list[_Entry]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such token file; create it with 'flowsentinel token add --file {path} --name NAME'") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the token file: {exc.strerror}") from None
    entries, names = [], set()
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3:
            raise ConfigError(f"{path}, line {number}: expected 'NAME SCOPE sha256:SALT:DIGEST', got {len(parts)} field(s)")
        name, scope, stored = parts
        if scope not in SCOPES:
            raise ConfigError(f"{path}, line {number}: scope {scope!r} is not one of {', '.join(SCOPES)}")
        if name in names:
            raise ConfigError(f"{path}, line {number}: token name {name!r} appears twice; names must be unique")
        algo, _, rest = stored.partition(":")
        salt_hex, _, digest_hex = rest.partition(":")
        try:
            salt, digest = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
        except ValueError:
            salt, digest = b"", b""
        if algo != "sha256" or len(salt) < 16 or len(digest) != 32:
            raise ConfigError(f"{path}, line {number}: the hash must be 'sha256:SALT:DIGEST' in hex (16+ byte salt, 32 byte digest)")
        names.add(name)
        entries.append(_Entry(name, scope, salt, digest))
    return entries


def _check_permissions(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        # Whoever can write the file can give themselves admin rights.
        raise ConfigError(f"{path}: the token file is writable by group or others; chmod 600 {path}")


class TokenStore:
    """The tokens of one token file, reloadable while the service runs.

    Args:
        path: the token file.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._entries: tuple[_Entry, ...] = ()
        self.reload()

    def reload(self) -> int:
        """Read the file again (on SIGHUP); a broken file keeps the tokens already loaded."""
        entries = _parse(self.path)
        _check_permissions(self.path)
        with self._lock:
            self._entries = tuple(entries)
        log.info("%s: %d token(s) loaded", self.path, len(entries))
        return len(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def verify(self, token: str) -> Identity | None:
        """The identity a token belongs to, or ``None``.

        Every stored hash is compared, with :func:`hmac.compare_digest`, so
        the time taken says nothing about which entry (or how much of one)
        matched.
        """
        entries = self._entries
        found = None
        for entry in entries:
            if hmac.compare_digest(_digest(entry.salt, token), entry.digest) and found is None:
                found = Identity(entry.name, entry.scope)
        return found


def _write(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("".join(lines))
    os.replace(tmp, path)


def add_token(path: str | Path, name: str, scope: str = "score") -> str:
    """Add a token named ``name`` to the file (created, mode 600); return the token, shown only now."""
    path = Path(path)
    if not _NAME.match(name):
        raise ConfigError(f"token name {name!r}: use 1-64 letters, digits and . _ @ -")
    if scope not in SCOPES:
        raise ConfigError(f"token scope {scope!r} is not one of {', '.join(SCOPES)}")
    lines = path.read_text().splitlines(keepends=True) if path.exists() else [
        "# flowsentinel bearer tokens: NAME SCOPE sha256:SALT:DIGEST (made by 'flowsentinel token add')\n"]
    if path.exists() and any(e.name == name for e in _parse(path)):
        raise ConfigError(f"{path}: a token named {name!r} exists; revoke it first or choose another name")
    token = new_token()
    salt = secrets.token_bytes(16)
    lines.append(f"{name} {scope} sha256:{salt.hex()}:{_digest(salt, token).hex()}\n")
    _write(path, lines)
    return token


def revoke_token(path: str | Path, name: str) -> None:
    """Remove the token named ``name``; a running service forgets it on SIGHUP."""
    path = Path(path)
    names = [e.name for e in _parse(path)]
    if name not in names:
        raise ConfigError(f"{path}: no token named {name!r} (there are: {', '.join(names) or 'none'})")
    kept = [line for line in path.read_text().splitlines(keepends=True)
            if line.strip().startswith("#") or not line.strip() or line.split()[0] != name]
    _write(path, kept)


def list_tokens(path: str | Path) -> list[tuple[str, str]]:
    """``(name, scope)`` of every token in the file."""
    return [(e.name, e.scope) for e in _parse(Path(path))]


def looks_like_token(text: str) -> bool:
    """``text`` has the shape of a token this module makes."""
    return bool(_TOKEN.match(text))
