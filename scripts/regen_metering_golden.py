#!/usr/bin/env python3
"""Regenerate the metering golden files in tests/golden/metering/.

Meters every shared capture (``$FLOWSENTINEL_DATA/pcaps/{ndpi,ppa,slips}``,
default ``<repo>/../shared/data``) and writes one JSON file per capture: the
counters, every flow, and for nDPI's captures the comparison with nDPI's
answer key. Review the diff before committing: a change in a golden file is a
change in what the meter produces.

    PYTHONPATH=src python scripts/regen_metering_golden.py [--check]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from flowsentinel.metering.answer_key import golden_record  # noqa: E402
from flowsentinel.paths import data_dir  # noqa: E402

GOLDEN_DIR = REPO / "tests" / "golden" / "metering"
CAPTURE_DIRS = ("ndpi", "ppa", "slips")
CAPTURE_SUFFIXES = (".pcap", ".pcapng")

log = logging.getLogger("regen_metering_golden")


def data_root() -> Path:
    return data_dir()


def captures(root: Path) -> list[Path]:
    found = []
    for sub in CAPTURE_DIRS:
        folder = root / "pcaps" / sub
        if folder.is_dir():
            found += sorted(p for p in folder.iterdir() if p.suffix in CAPTURE_SUFFIXES)
    return found


def golden_path(capture: Path) -> Path:
    return GOLDEN_DIR / f"{capture.parent.name}__{capture.name}.json"


def dumps(record: dict) -> str:
    return json.dumps(record, indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report which golden files would change")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    root = data_root()
    caps = captures(root)
    if not caps:
        log.error("no captures under %s/pcaps; set FLOWSENTINEL_DATA to the shared data folder", root)
        return 2
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    changed = 0
    for cap in caps:
        text = dumps(golden_record(cap, root))
        out = golden_path(cap)
        old = out.read_text() if out.exists() else None
        if old != text:
            changed += 1
            log.info("%s %s", "would change" if args.check else "wrote", out.relative_to(REPO))
            if not args.check:
                out.write_text(text)
    log.info("%d capture(s), %d golden file(s) %s", len(caps), changed, "differ" if args.check else "updated")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
