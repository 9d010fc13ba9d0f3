"""Rule identities for model classes: what a SIEM keys on in ``alert.signature_id``, ``rev`` and ``severity``.

A model has no rules, but SIEM content (Wazuh's Suricata rules, Splunk's
``suricata`` sourcetype, Kibana's detection dashboards) groups and
suppresses by signature id. Each class a model can predict therefore gets a
fixed id in flowsentinel's private range (``data/signatures.json``:
1,717,000 to 1,717,999, inside the block that Snort and Suricata leave to
local rules), a Suricata classtype as ``category`` and a severity from 1
(highest) to 3. ``rev`` changes whenever the model does.

>>> s = signature("DoS")
>>> s.sid, s.category, s.severity, s.name
(1717011, 'Attempted Denial of Service', 2, 'FLOWSENTINEL DoS traffic')
>>> 1717900 <= signature("Some new class").sid <= 1717999
True
>>> rule_rev("0.1.0/2026-01-05T10:00:00+00:00")
1767607200
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

from ..errors import ConfigError
from ..paths import package_file

__all__ = ["Signature", "signature", "rule_rev", "GID"]

DATA_FILE = "signatures.json"
GID = 1
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?")


@dataclass(frozen=True)
class Signature:
    """The rule identity of one class: ``sid``, ``category`` (a Suricata classtype), ``severity``, ``name``."""

    sid: int
    category: str
    severity: int
    name: str


@lru_cache(maxsize=1)
def _table() -> dict:
    data = json.loads(package_file(DATA_FILE).read_text())
    low, high = data["range"]
    for name, entry in data["classes"].items():
        if not low <= entry["sid"] <= high or entry["severity"] not in (1, 2, 3):
            raise ConfigError(f"{package_file(DATA_FILE)}: class {name!r} has sid {entry['sid']} outside "
                              f"{low}-{high} or a severity other than 1-3")
    return data


@lru_cache(maxsize=512)
def signature(cls: str) -> Signature:
    """The rule identity of class ``cls``; classes not in the table hash into its reserved block."""
    data = _table()
    entry = data["classes"].get(str(cls))
    if entry is None:
        low, high = data["hashed_range"]
        entry = {**data["default"], "sid": low + zlib.crc32(str(cls).encode()) % (high - low + 1)}
    return Signature(int(entry["sid"]), entry["classtype"], int(entry["severity"]), f"FLOWSENTINEL {cls} traffic")


def rule_rev(model_version: str) -> int:
    """``rev`` of a model: the epoch second it was saved (later models, higher ``rev``).

    A version without a save time (an unsaved model) gets a stable hash of its
    text, and an empty one 1.
    """
    match = _ISO.search(model_version or "")
    if match:
        text = match.group(0).replace("Z", "+00:00")
        when = datetime.fromisoformat(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return int(when.timestamp())
    return zlib.crc32(model_version.encode()) & 0x7FFFFFFF if model_version else 1
