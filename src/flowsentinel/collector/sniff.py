"""Telling nfdump's files apart by their first bytes, without importing the collector's decoding.

``detect`` asks these questions of every input it is given, so they live
apart from :mod:`~flowsentinel.collector.nfdump`, which imports numpy,
pandas and the collector's record handling to read the files.
"""

from __future__ import annotations

import gzip
import os

__all__ = ["NFDUMP_MAGIC", "NFDUMP_CSV_HEADER", "is_nfcapd_file", "is_nfdump_csv"]

#: The first two bytes of an nfcapd/nfdump binary file (0xA50C, little-endian).
NFDUMP_MAGIC = b"\x0c\xa5"
#: How ``nfdump -o csv`` output begins.
NFDUMP_CSV_HEADER = "ts,te,td,sa,da,sp,dp,pr,flg"


def is_nfcapd_file(path: str | os.PathLike) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == NFDUMP_MAGIC
    except OSError:
        return False


def is_nfdump_csv(path: str | os.PathLike) -> bool:
    try:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rt", errors="replace") as fh:
            return fh.readline().startswith(NFDUMP_CSV_HEADER)
    except (OSError, EOFError, gzip.BadGzipFile):
        return False
