"""The ``flowsentinel`` command line: one module per command, each parsing and printing only.

Every command module has ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; :data:`COMMANDS` lists them in the order ``--help``
shows them.

Exit status (``docs/reliability.md``, "Exit status"): 0 on success; 2 when
the user can fix the cause (a :class:`~flowsentinel.errors.FlowsentinelError`,
or an output that cannot be written: disk full, read-only file system), with
one line on stderr naming the file; 141 when the reader of the output went
away (a closed pipe, ``| head -1``), as if stopped by SIGPIPE; 130 on SIGINT
(Ctrl-C) and 143 on SIGTERM, after the command has printed what it had done;
1 with a traceback for anything else, which is a bug.
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
    errno.EPIPE: "output closed by its reader (broken pipe)",
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
    """One line for an OS error the user can act on, or ``None`` for one that is a bug.

    An error without a file name came from writing a stream (``print`` to a
    full disk or a closed pipe): standard output is named.
    """
    from ..io.outputs import WRITE_ERRNOS

    reason = _ENVIRONMENT_ERRNOS.get(exc.errno or -1)
    if reason is None:
        return None
    where = exc.filename if exc.filename is not None else "standard output"
    todo = WRITE_ERRNOS.get(exc.errno or -1, ("", ""))[1]
    return f"{where}: {reason}" + (f"; {todo}" if todo and exc.filename is None else "")


class Interrupted(KeyboardInterrupt):
    """SIGTERM, delivered like Ctrl-C so that a command stops the same way and says what it had done."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _terminate(signum, frame):  # pragma: no cover - exercised through a subprocess
    raise Interrupted(signum)


def _install_term_handler():
    """SIGTERM raises :class:`Interrupted` in the main thread, unless something already handles it;
    returns a function that puts the previous handler back (``main`` called in-process)."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)
        return lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return lambda: None


def _silence_stdout() -> None:
    """After a closed pipe or a full disk: nothing more can reach standard output; keep the
    interpreter from failing again on it while it shuts down."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    from ..errors import FlowsentinelError

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else (logging.WARNING if args.quiet else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    restore = _install_term_handler()
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a full disk or a closed pipe shows here, while it can still be reported
        return status
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", 2)
        print(f"flowsentinel: {'terminated (SIGTERM)' if signum == 15 else 'interrupted'}", file=sys.stderr)
        return 128 + signum
    except FlowsentinelError as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if exc.exit_status == 141:
            _silence_stdout()
        print(f"flowsentinel: error: {msg}", file=sys.stderr)
        return exc.exit_status
    except OSError as exc:
        line = _os_error_line(exc)
        if line is None:
            raise
        if exc.errno in (errno.EPIPE, errno.ENOSPC, errno.EIO) and exc.filename is None:
            _silence_stdout()
        print(f"flowsentinel: error: {line}", file=sys.stderr)
        return 141 if exc.errno == errno.EPIPE else 2
    finally:
        restore()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
