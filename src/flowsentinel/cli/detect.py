"""``flowsentinel detect``: score a flow file, a capture or a live interface and write verdicts."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..choices import BACKENDS, ENGINES, OUTPUT_FORMATS, SUPPRESS_KEYS
from ..errors import UsageError
from ._common import (
    add_host_context_arguments,
    add_model_argument,
    host_context_config,
    load_detector,
    model_dir_of,
    output,
)

NAME = "detect"
HELP = "score flows (a flow file, a capture or an interface) and write verdicts"


def add_arguments(d: argparse.ArgumentParser) -> None:
    d.add_argument("input", nargs="?",
                   help="flow file (CSV, CSV.gz, Parquet), capture (pcap, pcapng) or nfdump file (nfcapd, nfdump -o csv)")
    d.add_argument("--interface", "-i", help="meter and score a live interface")
    add_model_argument(d)
    d.add_argument("--output", "-o", help="default: standard output")
    d.add_argument("--format", choices=OUTPUT_FORMATS, default="jsonl")
    d.add_argument("--alerts-only", action="store_true", help="write alerts only, not every flow")
    d.add_argument("--summary", help="also write the summary as JSON here")
    d.add_argument("--backend", choices=BACKENDS)
    d.add_argument("--engine", choices=ENGINES, default="auto",
                   help="network engine (default auto: ONNX Runtime where installed, else PyTorch)")
    d.add_argument("--threads", type=int, default=1, help="inference threads in each scoring worker (default 1)")
    d.add_argument("--workers", type=int, metavar="N",
                   help="chunks the network scores at once (default: 2 through ONNX Runtime on 2 or more cores, else 1)")
    d.add_argument("--idle-timeout", type=int, default=120, help="capture/live: flow idle timeout, s")
    d.add_argument("--active-timeout", type=int, default=1800, help="capture/live: flow active timeout, s")
    d.add_argument("--max-packets", type=int, help="live: stop after N packets")
    d.add_argument("--max-seconds", type=float, help="live: stop after N seconds")
    d.add_argument("--no-progress", action="store_true")
    add_host_context_arguments(d)
    a = d.add_argument_group("alert records (see docs/alerts.md)")
    a.add_argument("--sensor", help="sensor name: EVE 'host', ECS 'observer.hostname' (default: this host's name)")
    a.add_argument("--community-id-seed", type=int, default=0, help="Community ID seed (default 0)")
    a.add_argument("--suppress-window", type=float, default=60.0,
                   help="fold an alert's repeats within this many seconds into one follow-up (default 60)")
    a.add_argument("--suppress-by", choices=SUPPRESS_KEYS, default="source_class",
                   help="what a repeat shares with the first alert (default: source and class)")
    a.add_argument("--no-suppress", action="store_true", help="write every alert as it comes")
    a.add_argument("--explain", action="store_true", help="attach the features that pushed each alert's score most")
    a.add_argument("--explain-top", type=int, default=5, help="features per explanation (default 5)")


def is_capture(path: Path) -> bool:
    """A pcap/pcapng file, by its magic number or its name."""
    if not path.is_file():
        # Opening a FIFO without a writer would block here; readers refuse what is not a regular file.
        return path.suffix.lower() in (".pcap", ".pcapng", ".cap")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError:
        return False
    return magic in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a") \
        or path.suffix.lower() in (".pcap", ".pcapng", ".cap")


def writer_options(args: argparse.Namespace, detector) -> dict:
    """AlertWriter settings from the command line (the explainer is checked against the model here)."""
    from functools import partial

    from ..alerting.suppress import SuppressConfig

    options = {"sensor": args.sensor, "community_id_seed": args.community_id_seed, "explain_top_k": args.explain_top,
               "suppress": SuppressConfig(window_s=args.suppress_window, key=args.suppress_by,
                                          enabled=not args.no_suppress)}
    if args.explain:
        from ..explain import explain_flows, explainable_parts

        explainable_parts(detector)
        options["explainer"] = partial(explain_flows, detector)
    return options

def is_nfdump(path: str) -> bool:
    """An nfcapd archive file or the CSV that ``nfdump -o csv`` writes (never sniffed unless a regular file:
    opening a FIFO would block, and a link to ``/dev/zero`` has no end of line)."""
    from ..collector.sniff import is_nfcapd_file, is_nfdump_csv

    if not Path(path).is_file():
        return False
    return is_nfcapd_file(path) or is_nfdump_csv(path)


def run(args: argparse.Namespace) -> int:
    from ..io.outputs import check_output_path, write_text
    from ..serving.detect import DetectSummary

    if bool(args.input) == bool(args.interface):
        raise UsageError("detect: give an INPUT file (flows or capture) or --interface IF, not both and not neither")
    for path in (args.output, args.summary):
        if path not in (None, "-"):
            check_output_path(path)  # refused before the model is loaded
    detector = load_detector(model_dir_of(args), args.backend, args.engine, args.threads)
    if args.input:
        from ..serving.allocator import keep_freed_memory

        keep_freed_memory()  # a file's chunks reuse the pages freed by the last one
    summary = DetectSummary()
    meter_run = None
    try:
        meter_run = _score(args, detector, summary)
    except KeyboardInterrupt as exc:
        _interrupted(args, summary, meter_run, exc)
        raise
    print(f"detect: {summary.text()}", file=sys.stderr)
    if args.summary:
        write_text(args.summary, json.dumps({**summary.as_dict(), "complete": True}, indent=2))
    return 0


def _score(args: argparse.Namespace, detector, summary):
    """Score the input into the output, filling ``summary`` as it goes; the meter run of a capture, if any."""
    from ..io.alerts import AlertWriter
    from ..serving.detect import StreamConfig, detect_file, detect_frames, model_identity

    options = writer_options(args, detector)
    stream = StreamConfig(scoring_workers=args.workers)
    hosts = host_context_config(args)
    progress = not args.no_progress
    meter_run = None
    with output(args.output, live=bool(args.interface)) as out:
        if args.interface or is_capture(Path(args.input)):
            from ..metering import MeterConfig, meter_capture, meter_interface

            config = MeterConfig(idle_timeout=args.idle_timeout, active_timeout=args.active_timeout)
            if args.interface:
                meter_run = meter_interface(args.interface, config, args.max_packets, args.max_seconds)
            else:
                meter_run = meter_capture(args.input, config)
            name, version = model_identity(detector)
            writer = AlertWriter(out, args.format, model_name=name, model_version=version, only_alerts=args.alerts_only,
                                 threshold=detector.threshold_, interface=args.interface, **options)
            detect_frames(detector, meter_run, writer, where=args.input or args.interface, progress=progress,
                          summary=summary, host_context=hosts, stream=stream)
            print(f"metering: {meter_run.stats.summary()}", file=sys.stderr)
        elif is_nfdump(args.input):
            from ..collector.nfdump import read_nfdump

            name, version = model_identity(detector)
            writer = AlertWriter(out, args.format, model_name=name, model_version=version, only_alerts=args.alerts_only,
                                 threshold=detector.threshold_, **options)
            detect_frames(detector, read_nfdump(args.input), writer, where=args.input, progress=progress,
                          summary=summary, host_context=hosts, stream=stream)
        else:
            detect_file(detector, args.input, out, args.format, only_alerts=args.alerts_only,
                        progress=progress, summary=summary, host_context=hosts, stream=stream, **options)
    return meter_run


def _interrupted(args: argparse.Namespace, summary, meter_run, exc: KeyboardInterrupt) -> None:
    """What was done before SIGINT or SIGTERM: one line on stderr, and the ``--summary`` file, marked incomplete."""
    from ..io.outputs import PARTIAL_SUFFIX, check_output_path, write_text

    signame = "SIGTERM" if getattr(exc, "signum", 2) == 15 else "SIGINT"
    kept = None
    if args.output not in (None, "-") and check_output_path(args.output) == "replace":
        candidate = Path(args.output + PARTIAL_SUFFIX)
        kept = str(candidate) if candidate.is_file() else None
    where = f"; verdicts written so far are in {kept}" if kept else ""
    if meter_run is not None:
        print(f"metering: {meter_run.stats.summary()}", file=sys.stderr)
    print(f"detect: stopped by {signame} after {summary.text()}{where}", file=sys.stderr)
    if args.summary:
        write_text(args.summary, json.dumps({**summary.as_dict(), "complete": False, "stopped_by": signame,
                                             "output": kept or args.output}, indent=2))
