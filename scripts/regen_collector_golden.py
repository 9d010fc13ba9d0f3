#!/usr/bin/env python3
"""Regenerate the collector golden files in tests/golden/collector/.

For every shared capture (``$FLOWSENTINEL_DATA/pcaps/{ndpi,ppa,slips,attacks}``,
default ``<repo>/../shared/data``), softflowd exports it as NetFlow v5, v9,
IPFIX and bidirectional IPFIX (``-a``: the capture's own times); nfdump's
nfcapd receives each export and ``nfdump -o json`` gives the answer key,
written as one JSON file per capture (every row, or for exports of more
than 1,000 records a digest and totals). ``tests/collector/test_golden.py``
compares the collector's decoding of a fresh export with them. Review the
diff before committing: a change in a golden file is a change in what the
peers produce.

    PYTHONPATH=src python scripts/regen_collector_golden.py [--check]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from flowsentinel.collector.answer_key import golden_record  # noqa: E402
from flowsentinel.collector.peers import tool_missing  # noqa: E402
from flowsentinel.paths import data_dir  # noqa: E402

GOLDEN_DIR = REPO / "tests" / "golden" / "collector"
CAPTURE_DIRS = ("ndpi", "ppa", "slips", "attacks")
CAPTURE_SUFFIXES = (".pcap", ".pcapng")

log = logging.getLogger("regen_collector_golden")


def captures(root: Path) -> list[Path]:
    found = []
    for sub in CAPTURE_DIRS:
        folder = root / "pcaps" / sub
        if folder.is_dir():
            found += sorted(p for p in folder.rglob("*") if p.suffix in CAPTURE_SUFFIXES)
    return found


def golden_path(capture: Path, root: Path) -> Path:
    rel = capture.relative_to(root / "pcaps")
    return GOLDEN_DIR / ("__".join(rel.parts) + ".json")


def _with_rows(record: dict) -> str:
    parts = ["{", f' "capture": {json.dumps(record["capture"])},', f' "fields": {json.dumps(record["fields"])},',
             ' "exports": {']
    names = list(record["exports"])
    for k, name in enumerate(names):
        export = dict(record["exports"][name])
        rows = export.pop("rows", None)
        head = json.dumps(export)[1:-1]
        if rows is None:
            parts.append(f'  {json.dumps(name)}: {{{head}}}' + ("," if k < len(names) - 1 else ""))
            continue
        parts.append(f'  {json.dumps(name)}: {{{head}, "rows": [')
        parts += [f"   {json.dumps(r)}" + ("," if i < len(rows) - 1 else "") for i, r in enumerate(rows)]
        parts.append("  ]}" + ("," if k < len(names) - 1 else ""))
    parts += [" }", "}", ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report which golden files would change")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    missing = tool_missing("softflowd", "nfcapd", "nfdump")
    if missing:
        log.error("%s", missing)
        return 2
    root = data_dir()
    caps = captures(root)
    if not caps:
        log.error("no captures under %s/pcaps; set FLOWSENTINEL_DATA to the shared data folder", root)
        return 2
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    changed = 0
    for cap in caps:
        text = _with_rows(golden_record(cap, root))
        json.loads(text)
        out = golden_path(cap, root)
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
