"""The ``flowsentinel meter`` command: argument parsing and the call into the library.

>>> import argparse
>>> p = argparse.ArgumentParser(prog="meter")
>>> add_meter_arguments(p)
>>> a = p.parse_args(["cap.pcap", "-o", "flows.csv", "--schema", "v1"])
>>> config_from_args(a).schema, a.output
('v1', 'flows.csv')
"""

from __future__ import annotations

import argparse
import logging
import sys

from .capture import MeterError
from .config import MeterConfig
from .meter import MeterStats, meter_capture, meter_interface

__all__ = ["add_meter_arguments", "config_from_args", "run_meter"]

log = logging.getLogger(__name__)


def add_meter_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``meter`` options to an argparse (sub)parser."""
    defaults = MeterConfig()
    parser.add_argument("capture", nargs="?", help="pcap or pcapng file to meter (omit with --interface)")
    parser.add_argument("-o", "--output", required=True, help="flow CSV to write (.csv or .csv.gz)")
    parser.add_argument("--interface", "-i", help="meter a live network interface instead of a file")
    parser.add_argument("--schema", choices=("v1", "v2"), default=defaults.schema, help="NF column set (default v2)")
    parser.add_argument(
        "--idle-timeout", type=int, default=defaults.idle_timeout, metavar="S",
        help=f"close a flow idle for S seconds (default {defaults.idle_timeout})",
    )
    parser.add_argument(
        "--active-timeout", type=int, default=defaults.active_timeout, metavar="S",
        help=f"cut a flow open for S seconds (default {defaults.active_timeout})",
    )
    parser.add_argument("--bpf", default=None, metavar="FILTER", help="BPF filter, e.g. 'tcp or udp'")
    parser.add_argument("--snaplen", type=int, default=defaults.snaplen, help="live capture bytes per packet")
    parser.add_argument("--flow-id", action="store_true", help="add a FLOW_ID column")
    parser.add_argument("--max-packets", type=int, default=None, help="live: stop after this many packets")
    parser.add_argument("--max-seconds", type=float, default=None, help="live: stop after this many seconds")
    parser.add_argument("--no-progress", action="store_true", help="do not show progress on stderr")


def config_from_args(args: argparse.Namespace) -> MeterConfig:
    return MeterConfig(
        schema=args.schema,
        idle_timeout=args.idle_timeout,
        active_timeout=args.active_timeout,
        bpf_filter=args.bpf,
        snaplen=args.snaplen,
        flow_id=args.flow_id,
    )


def run_meter(args: argparse.Namespace) -> int:
    """Run ``flowsentinel meter``; 0 on success, the error's status on bad input or output (one line on stderr).

    Interrupted (SIGINT, or SIGTERM under the command line) while reading a
    capture, it prints what was metered so far, leaves what was written in
    ``OUTPUT.partial`` and lets the interrupt go on (exit 130 or 143).
    """
    from ..errors import FlowsentinelError
    from ..io.outputs import check_output_path, output_error

    run = None
    bar = None
    try:
        if bool(args.capture) == bool(args.interface):
            raise MeterError("meter: give either a CAPTURE file or --interface IF, not both and not neither")
        config = config_from_args(args)
        check_output_path(args.output)  # before any packet is read
        shown: list = []  # the bar, once the capture or interface has been checked (errors print alone)
        update = None if args.no_progress else (lambda s: _show(shown[0], s) if shown and shown[0] else None)
        if args.interface:
            run = meter_interface(args.interface, config, args.max_packets, args.max_seconds, progress=update)
        else:
            run = meter_capture(args.capture, config, progress=update)
        bar = None if args.no_progress else _progress_bar()
        shown.append(bar)
        try:
            stats = run.to_csv(args.output)
        finally:
            if bar is not None:
                bar.close()
                bar = None
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        if run is not None:
            print(f"meter: interrupted; {run.stats.summary()}", file=sys.stderr)
        raise
    except FlowsentinelError as exc:
        if bar is not None:
            bar.close()
        print(f"error: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}",
              file=sys.stderr)
        return exc.exit_status
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        err = output_error(args.output, exc)
        if err is None:
            raise
        print(f"error: {err}", file=sys.stderr)
        return err.exit_status
    print(stats.summary(), file=sys.stderr)
    return 0


def _progress_bar():
    try:
        from tqdm import tqdm
    except ImportError:  # progress is a convenience, not a requirement
        return None
    return tqdm(total=0, unit=" flows", file=sys.stderr, dynamic_ncols=True, leave=False, mininterval=0.5)


def _show(bar, stats: MeterStats) -> None:
    bar.n = stats.flows
    bar.set_postfix_str(f"{stats.packets_metered} packets", refresh=False)
    bar.refresh()
