"""``flowsentinel score --url URL FILE``: score a flow file with a running service."""

from __future__ import annotations

import argparse
import sys

from ._common import output

NAME = "score"
HELP = "score a flow file with a running flowsentinel service (see 'serve')"

_LINE = "_line"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("input", help="flow file (CSV, CSV.gz, Parquet)")
    s.add_argument("--url", required=True, help="the service, e.g. http://127.0.0.1:8750")
    s.add_argument("--token-file", help="a file holding the token (default: $FLOWSENTINEL_TOKEN)")
    s.add_argument("--ca-cert", help="CA certificate to check an HTTPS service with (default: the system's)")
    s.add_argument("--output", "-o", help="default: standard output")
    s.add_argument("--alerts-only", action="store_true", help="write the EVE records of alerts only")
    s.add_argument("--batch-flows", type=int, default=1000, help="flows per request (default 1000)")
    s.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default 60)")


def run(args: argparse.Namespace) -> int:
    import orjson

    from ..errors import UsageError
    from ..io.readers import FlowReader, ReadConfig
    from ..service.client import ScoreClient

    if args.batch_flows < 1:
        raise UsageError(f"score: --batch-flows must be at least 1, got {args.batch_flows}")
    reader = FlowReader(args.input, ReadConfig(require_labels=False, chunk_rows=args.batch_flows, line_column=_LINE))
    n_flows = n_alerts = 0
    with ScoreClient(args.url, token_file=args.token_file, timeout=args.timeout, verify=args.ca_cert or True) as client, \
            output(args.output) as out:
        for chunk in reader:
            lines = chunk[_LINE].to_numpy()
            answer = client.score_raw(chunk.drop(columns=[_LINE]))
            for verdict, line in zip(answer["verdicts"], lines.tolist()):
                verdict["row"] = line
                eve = verdict.get("eve")
                if eve is not None:
                    # The service numbers rows within its batch; the file's line is what points back.
                    eve.get("flowsentinel", {})["row"] = line
                if args.alerts_only:
                    if eve is not None:
                        out.write(orjson.dumps(eve).decode() + "\n")
                else:
                    out.write(orjson.dumps(verdict).decode() + "\n")
            n_flows += answer["n_flows"]
            n_alerts += answer["n_alerts"]
        model = client.model() if n_flows == 0 else answer["model"]
    report = reader.report
    rejected = f"; {report.n_rejected:,} bad rows set aside in {report.rejects_path}" if report.n_rejected else ""
    print(f"score: {n_flows:,} flows scored by {args.url} ({model['name']} {model['version']}), "
          f"{n_alerts:,} alerts{rejected}", file=sys.stderr)
    return 0
