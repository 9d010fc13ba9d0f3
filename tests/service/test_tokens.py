"""Tokens: random, stored hashed, checked against every entry, reloadable, refused when the file is unsafe."""

from __future__ import annotations

import os

import pytest

from flowsentinel.errors import ConfigError
from flowsentinel.service.tokens import (
    TokenStore,
    add_token,
    list_tokens,
    looks_like_token,
    revoke_token,
)


def test_a_token_is_stored_only_as_a_salted_hash(tmp_path):
    path = tmp_path / "tokens"
    one, two = add_token(path, "a"), add_token(path, "b", "admin")
    text = path.read_text()
    assert one not in text and two not in text
    assert looks_like_token(one) and len(set(one[3:])) > 10
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    salts = [line.split()[2].split(":")[1] for line in text.splitlines() if not line.startswith("#")]
    assert len(set(salts)) == 2
    store = TokenStore(path)
    assert store.verify(one).scope == "score" and store.verify(two).scope == "admin"
    assert store.verify(two).allows("score") and not store.verify(one).allows("admin")


@pytest.mark.parametrize("wrong", ["", "Bearer", "fs_", "x" * 47])
def test_wrong_tokens_match_nothing(tmp_path, wrong):
    path = tmp_path / "tokens"
    token = add_token(path, "a")
    store = TokenStore(path)
    assert store.verify(wrong) is None
    assert store.verify(token[:-1]) is None and store.verify(token + " ") is None


def test_revoke_list_and_reload(tmp_path):
    path = tmp_path / "tokens"
    keep, gone = add_token(path, "keep"), add_token(path, "gone", "admin")
    store = TokenStore(path)
    revoke_token(path, "gone")
    assert list_tokens(path) == [("keep", "score")]
    assert store.verify(gone) is not None  # until reloaded
    store.reload()
    assert store.verify(gone) is None and store.verify(keep) is not None
    with pytest.raises(ConfigError, match="no token named 'gone'"):
        revoke_token(path, "gone")


def test_a_broken_file_on_reload_keeps_the_tokens_loaded(tmp_path):
    path = tmp_path / "tokens"
    token = add_token(path, "a")
    store = TokenStore(path)
    path.write_text(path.read_text() + "b admin not-a-hash\n")
    with pytest.raises(ConfigError, match="line 3"):
        store.reload()
    assert store.verify(token).name == "a"


@pytest.mark.parametrize("line,message", [
    ("a root sha256:" + "00" * 16 + ":" + "00" * 32, "scope 'root'"),
    ("a score sha256:00:" + "00" * 32, "16\\+ byte salt"),
    ("a score", "expected 'NAME SCOPE"),
])
def test_malformed_lines_are_named(tmp_path, line, message):
    path = tmp_path / "tokens"
    path.write_text(line + "\n")
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match=message):
        TokenStore(path)


def test_a_file_others_can_write_is_refused(tmp_path):
    path = tmp_path / "tokens"
    add_token(path, "a")
    os.chmod(path, 0o666)
    with pytest.raises(ConfigError, match="chmod 600"):
        TokenStore(path)


def test_names_are_unique_and_plain(tmp_path):
    path = tmp_path / "tokens"
    add_token(path, "a")
    with pytest.raises(ConfigError, match="exists"):
        add_token(path, "a")
    with pytest.raises(ConfigError, match="token name"):
        add_token(path, "two words")
