"""The ``flowsentinel`` command line: one module per command, each parsing and printing only.

Every command module has ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; :data:`COMMANDS` lists them in the order ``--help``
shows them.

Exit status: 0 on success; 2 when the user can fix the cause (a
:class:`~flowsentinel.errors.FlowsentinelError`, or an output that cannot be
written: disk full, read-only file system, closed pipe), with one line on
stderr; 130 on Ctrl-C; 1 with a traceback for anything else, which is a bug.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from importlib import import_module
from typing import Sequence

__all__ = ["main", "build_parser", "chosen_command", "COMMANDS"]

log = logging.getLogger("flowsentinel")

#: Command modules, in the order of ``flowsentinel --help``.
COMMANDS = ("train", "evaluate", "detect", "adapt", "info", "benchmark", "crosseval", "tune", "meter", "collect",
            "report", "serve", "score", "token", "spark_detect")

# OS errors that are the environment's, not a bug: the user can act on each.
_ENVIRONMENT_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EROFS: "read-only file system",
    errno.EPIPE: "output closed (broken pipe)",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "no such file or directory",
    errno.EISDIR: "is a directory",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.EEXIST: "already exists",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large",
    errno.EIO: "input/output error",
    errno.ENXIO: "no such device or address",
}


class _Version(argparse.Action):
    """``--version``, reading the version only when asked (see ``flowsentinel.__getattr__``)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="show program's version number and exit"):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from .. import __version__

        print(f"flowsentinel {__version__}")  # on standard output, as argparse's own version action
        parser.exit()


def chosen_command(argv: Sequence[str]) -> str | None:
    """The command an argument list names: its first word that is not an option.

    The top-level options (``-v``, ``-q``, ``--version``, ``-h``) take no value,
    so the first other word is the command (or a mistake argparse reports).

    >>> chosen_command(["-q", "detect", "flows.csv"]), chosen_command(["--help"])
    ('detect', None)
    """
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command-line parser; given ``argv``, only the command it names gets its arguments.

    Every command module is imported (their top levels are light: choices,
    errors), so ``--help`` lists every command; ``add_arguments``, which may
    import a command's heavy modules for its choices, runs for the chosen
    command only, so that ``detect`` does not start by importing Spark or
    scikit-learn. Without ``argv`` every command gets its arguments.
    """
    chosen = None if argv is None else chosen_command(argv)
    p = argparse.ArgumentParser(prog="flowsentinel", description="CNN-BiLSTM network intrusion detection over NetFlow records.")
    p.add_argument("--version", action=_Version)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = import_module(f"{__name__}.{name}")
        parser = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        if argv is None or module.NAME == chosen:
            module.add_arguments(parser)
        parser.set_defaults(func=module.run)
    return p


def _os_error_line(exc: OSError) -> str | None:
    """One line for an OS error the user can act on, or ``None`` for one that is a bug."""
    reason = _ENVIRONMENT_ERRNOS.get(exc.errno or -1)
    if reason is None:
        return None
    where = exc.filename if exc.filename is not None else ""
    return f"{where}: {reason}" if where else reason


def main(argv: Sequence[str] | None = None) -> int:
    from ..errors import FlowsentinelError

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else (logging.WARNING if args.quiet else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("flowsentinel: interrupted", file=sys.stderr)
        return 130
    except FlowsentinelError as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"flowsentinel: error: {msg}", file=sys.stderr)
        return exc.exit_status
    except OSError as exc:
        line = _os_error_line(exc)
        if line is None:
            raise
        if exc.errno == errno.EPIPE:
            # Nothing more can reach the closed pipe; keep the interpreter from
            # complaining about it again while it shuts down.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        print(f"flowsentinel: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
