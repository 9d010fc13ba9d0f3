"""``flowsentinel report``: a one-page HTML (and Markdown) summary of an alert file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "report"
HELP = "summarise an alert file (EVE or ECS) as one HTML page with plots, plus Markdown"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("alerts", help="alert file written by 'flowsentinel detect' (EVE JSON lines or ECS)")
    p.add_argument("--output", "-o", help="HTML page (default: the alert file's name with .html, beside it)")
    p.add_argument("--markdown", help="Markdown page (default: the HTML page's name with .md; plots beside it)")
    p.add_argument("--title", default="flowsentinel alert report")


def run(args: argparse.Namespace) -> int:
    from ..alerting.report import read_alerts, write_report

    source = Path(args.alerts)
    html_path = Path(args.output) if args.output else source.with_suffix(".html")
    alerts = read_alerts(source)
    html, md = write_report(alerts, html_path, args.markdown, source=source, title=args.title)
    print(f"report: {len(alerts):,} alert records summarised in {html} and {md}", file=sys.stderr)
    return 0
