"""Output files written safely: never clobbering what is not ours, never looking complete when they are not.

Every command that writes a file (``detect`` verdicts and ``--summary``,
``meter -o``, ``report``, ``evaluate``'s report folder) opens it through
:func:`open_output` (or :func:`write_text` / :func:`write_bytes`). What
happens depends on what the path names:

=============================================  ==============================================
the path                                       what is done
=============================================  ==============================================
``-`` or nothing                               standard output, written through
nothing there yet, or a regular file           written under a temporary name beside it
                                               (``.NAME.XXXX.partial``), flushed, then renamed
                                               onto ``NAME``: ``NAME`` is either the old file or
                                               the whole new one, never half of one
the same, for a live output (``collect``,     written in place under its own name, line by
``detect --interface``, followed by readers)   line; never through a symbolic link
a character device (``/dev/null``,             written through, in place: the node is opened
``/dev/full``, a terminal) or a FIFO            for writing and never replaced; a FIFO must
                                               have a reader already (no waiting)
``/dev/stdout``, ``/dev/stderr``,              written through to the open stream they stand
``/dev/fd/N``, ``/proc/self/fd/N``              for, whatever it is (pipe, terminal, file)
any other symbolic link                        refused: replacing it would leave its target
                                               stale, writing through it would let a link
                                               planted in a shared folder aim the output at any
                                               file; give the target's own path
a directory, block device or socket            refused
a path under something that is not a folder    refused, naming the part that is a file
=============================================  ==============================================

When the run fails or is interrupted after writing began, a regular
output's temporary file is kept as ``NAME.partial`` (what was written before
the stop; a previous ``NAME`` is left as it was) unless the failure was the
write itself (disk full, read-only, quota), in which case it is removed.

Errors the environment causes while writing are raised as
:class:`~flowsentinel.errors.OutputError` (exit 2, one line naming the file
and what to do), and a reader that went away (``| head -1``) as
:class:`~flowsentinel.errors.OutputClosedError` (exit 141, as if stopped by
SIGPIPE, the status shells expect of a writer whose pipe closed).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> with open_output(d / "v.jsonl") as fh:
...     _ = fh.write("{}\\n")
>>> sorted(p.name for p in d.iterdir())
['v.jsonl']
>>> (d / "link").symlink_to(d / "v.jsonl")
>>> write_text(d / "link", "x")
Traceback (most recent call last):
...
flowsentinel.errors.OutputError: ...link: is a symbolic link (to ...v.jsonl); flowsentinel does not write through links it might replace: give the target's own path
"""

from __future__ import annotations

import errno
import fcntl
import io
import logging
import os
import stat
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, NoReturn

from ..errors import FlowsentinelError, OutputClosedError, OutputError

__all__ = ["open_output", "write_text", "write_bytes", "check_output_path", "check_output_dir", "output_error",
           "WRITE_ERRNOS", "PARTIAL_SUFFIX"]

log = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial"

#: Errors of a write that the environment causes, with what to say and what to do.
WRITE_ERRNOS = {
    errno.ENOSPC: ("no space left on the device", "free some space or write elsewhere"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or write elsewhere"),
    errno.EFBIG: ("file too large for this file system", "write elsewhere"),
    errno.EROFS: ("read-only file system", "write to a writable location"),
    errno.EACCES: ("permission denied", "write to a location you may write to"),
    errno.EPERM: ("operation not permitted", "write to a location you may write to"),
    errno.EIO: ("input/output error", "check the device, or write elsewhere"),
    errno.ENOTDIR: ("a part of the path is not a directory", "give a path inside a folder"),
    errno.EISDIR: ("is a directory", "give a file name"),
    errno.ENXIO: ("no reader on the other end", "start the reader first"),
}
_STREAM_LINKS = ("/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/")
_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def output_error(path: str | os.PathLike, exc: OSError) -> FlowsentinelError | None:
    """The one-line error for an OS error writing ``path``, or ``None`` when it is not the environment's."""
    if exc.errno == errno.EPIPE:
        return OutputClosedError(f"{path}: output closed by its reader (broken pipe); what was written before stands")
    known = WRITE_ERRNOS.get(exc.errno or -1)
    if known is None:
        return None
    reason, todo = known
    return OutputError(f"{path}: cannot write: {reason}; {todo}")


def _is_stream_link(path: str) -> bool:
    return path.startswith(_STREAM_LINKS)


def _first_non_folder(path: Path) -> Path | None:
    """The first existing ancestor of ``path`` that is not a folder (``a_file`` in ``a_file/x.jsonl``)."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def check_output_path(path: str | os.PathLike) -> str:
    """How ``path`` will be written: ``replace`` (atomic rename), ``through`` (stream, device, FIFO).

    Refuses, with :class:`OutputError`, what must not be written.
    """
    text = os.fspath(path)
    p = Path(text)
    if _is_stream_link(text):
        return "through"
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        blocker = _first_non_folder(p)
        if blocker is not None:
            raise OutputError(f"{p}: cannot write: {blocker} is not a folder; give a path inside a folder") \
                from None
        return "replace"
    except NotADirectoryError:
        blocker = _first_non_folder(p) or p.parent
        raise OutputError(f"{p}: cannot write: {blocker} is not a folder; give a path inside a folder") \
            from None
    if stat.S_ISLNK(st.st_mode):
        raise OutputError(f"{p}: is a symbolic link (to {os.path.realpath(p)}); flowsentinel does not write "
                          "through links it might replace: give the target's own path")
    if stat.S_ISREG(st.st_mode):
        return "replace"
    if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        return "through"
    kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
    raise OutputError(f"{p}: is {kind}; give the path of a file to write")


def check_output_dir(path: str | os.PathLike) -> Path:
    """A folder an output folder (a model directory, a report folder) can be made at; refuses files, links, devices.

    Nothing is created. Called before long work so that a run does not fail at its end.
    """
    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        blocker = _first_non_folder(p)
        if blocker is not None:
            raise OutputError(f"{p}: cannot create the folder: {blocker} is not a folder") from None
        return _writable_folder(p)
    except NotADirectoryError:
        raise OutputError(f"{p}: cannot create the folder: {_first_non_folder(p) or p.parent} is not "
                          "a folder") from None
    if stat.S_ISLNK(st.st_mode) and not p.is_dir():
        raise OutputError(f"{p}: is a symbolic link to {os.path.realpath(p)}, not a folder")
    if not p.is_dir():
        raise OutputError(f"{p}: exists and is not a folder; give a new or an existing folder's path")
    return _writable_folder(p)


def _writable_folder(p: Path) -> Path:
    """``p`` when it, or the folder it would be made in, can be written; else the one line saying why."""
    existing = next((q for q in (p, *p.parents) if q.exists()), None)
    if existing is None or os.access(existing, os.W_OK | os.X_OK):
        return p
    try:
        read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    reason = "read-only file system" if read_only else "permission denied"
    raise OutputError(f"{p}: cannot write there: {existing} is on a {reason}; give a writable folder"
                      if read_only else f"{p}: cannot write there: {reason} in {existing}; give a writable folder")


def _stream_fd(path: str) -> int | None:
    """The descriptor a stream link stands for (``/dev/stdout`` is 1), or ``None``."""
    if path in ("/dev/stdout", "/dev/stderr"):
        return 1 if path == "/dev/stdout" else 2
    for prefix in _STREAM_LINKS[2:]:
        if path.startswith(prefix) and path[len(prefix):].isdigit():
            return int(path[len(prefix):])
    return None


def _open_through(path: str) -> IO[bytes]:
    """Open a device, FIFO or stream link for writing, in place: never created, replaced or truncated.

    A stream link is the process's own descriptor, duplicated, so that the
    output goes on where the stream stands (``>> file`` appends, as the shell asked).
    """
    fd_of_stream = _stream_fd(path)
    try:
        if fd_of_stream is not None:
            fd = os.dup(fd_of_stream)
        else:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OutputError(f"{path}: is a FIFO with no reader; start the reader first") from None
        if exc.errno == errno.EBADF:
            raise OutputError(f"{path}: that stream is not open in this process") from None
        _raise_output_error(path, exc)
    try:
        if fd_of_stream is None:
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


@contextmanager
def open_output(path: str | os.PathLike | None, mode: str = "w", *, newline: str | None = "",
                encoding: str = "utf-8", live: bool = False) -> Iterator[IO]:
    """Open an output for writing (``mode`` ``w`` text or ``wb`` bytes), safely; see the module's table.

    The file is complete under its name only when the ``with`` block ends
    without an exception. ``live``: an output that readers follow while it
    grows (``collect``, ``detect --interface``: a SIEM tails it) is written
    in place under its own name instead, created or truncated, never through
    a symbolic link (``O_NOFOLLOW``); the other refusals are the same.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"open_output: mode must be 'w' or 'wb', got {mode!r}")
    binary = mode == "wb"
    if path is None or os.fspath(path) == "-":
        stream = sys.stdout.buffer if binary else sys.stdout
        try:
            yield stream
            stream.flush()
        except OSError as exc:
            _raise_output_error("standard output", exc)
        return
    text = os.fspath(path)
    how = check_output_path(text)
    if how == "through":
        raw = _open_through(text)
        fh = raw if binary else io.TextIOWrapper(raw, encoding=encoding, newline=newline, write_through=False)
        with _written_in_place(fh, text):
            yield fh
        return
    target = Path(text)
    if live:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise OutputError(f"{target}: is a symbolic link; give the target's own path") from None
            _raise_output_error(target, exc)
        raw = os.fdopen(fd, "wb")
        fh = raw if binary else io.TextIOWrapper(raw, encoding=encoding, newline=newline, line_buffering=True)
        with _written_in_place(fh, text):
            yield fh
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=PARTIAL_SUFFIX, dir=target.parent)
    except OSError as exc:
        _raise_output_error(target.parent, exc)
    tmp = Path(tmp_name)
    os.fchmod(fd, 0o666 & ~_umask())
    raw = os.fdopen(fd, "wb")
    fh = raw if binary else io.TextIOWrapper(raw, encoding=encoding, newline=newline)
    try:
        yield fh
        fh.flush()
        os.fsync(raw.fileno())
        fh.close()
        if check_output_path(text) != "replace":  # something else took the name while writing
            raise OutputError(f"{target}: was replaced by a link, device or folder while being written; "
                              f"the output is left in {tmp}")
        os.replace(tmp, target)
    except OSError as exc:
        _close_quietly(fh)
        tmp.unlink(missing_ok=True)
        if isinstance(exc, FlowsentinelError):
            raise
        _raise_output_error(target, exc)
    except BaseException:
        _close_quietly(fh)
        _keep_partial(tmp, target)
        raise


def _keep_partial(tmp: Path, target: Path) -> None:
    """After a failure or an interrupt: keep what was written as ``NAME.partial``, or nothing when empty."""
    try:
        if tmp.stat().st_size == 0:
            tmp.unlink()
            return
        kept = target.with_name(target.name + PARTIAL_SUFFIX)
        if os.path.lexists(kept) and not kept.is_file():
            kept = tmp
        else:
            os.replace(tmp, kept)
        log.warning("%s: not complete; what was written before the stop is in %s", target, kept)
    except OSError:
        tmp.unlink(missing_ok=True)



def _raise_output_error(where, exc: OSError) -> NoReturn:
    """``exc`` as the one-line :class:`OutputError` it stands for, or ``exc`` itself where it is a bug."""
    err = output_error(where, exc)
    if err is None:
        raise exc
    raise err from None


@contextmanager
def _written_in_place(fh, where: str):
    """A file written where it is (no temporary name): flushed at the end, OS errors as one line, always closed."""
    try:
        yield fh
        fh.flush()
    except OSError as exc:
        _raise_output_error(where, exc)
    finally:
        _close_quietly(fh)

def _close_quietly(fh) -> None:
    try:
        fh.close()
    except (OSError, ValueError):
        pass


def _umask() -> int:
    """The process's umask, read without changing it (Linux), else by setting it back at once."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike | None, text: str, *, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` through :func:`open_output`."""
    with open_output(path, "w", encoding=encoding) as fh:
        fh.write(text)


def write_bytes(path: str | os.PathLike | None, data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`open_output`."""
    with open_output(path, "wb") as fh:
        fh.write(data)
