"""Opening flow files safely and cutting their text into line-aligned blocks.

This module knows bytes, not columns. It

* refuses anything that is not a regular file (a FIFO, a device, a socket, a
  directory) before reading a byte, so that a pipe without a writer cannot
  hang a run and ``/dev/zero`` behind a ``.csv`` name cannot exhaust memory;
* tells CSV text, gzip-compressed CSV and Parquet apart by their first bytes,
  whatever the name says, and names the file when name and content disagree;
* decompresses gzip itself, so that a stream cut short or damaged part-way is
  noticed at the byte where it happens and everything before it is kept;
* reads the header line with a length limit and drops a UTF-8 byte-order mark;
* cuts the rest into blocks that end at a line end outside quotes, each with
  its first line number and byte offset, and sets aside lines longer than a
  block instead of holding them in memory.

>>> import gzip, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "f.csv.gz").write_bytes(gzip.compress(b"\\xef\\xbb\\xbfa,b\\n1,2\\n3,4\\n"))
>>> with FlowText(d / "f.csv.gz") as text:
...     header = text.header()
...     blocks = list(text.blocks(block_bytes=1 << 20))
>>> header, [(b.first_line, b.n_lines, b.data) for b in blocks], text.complete
(['a', 'b'], [(2, 2, b'1,2\\n3,4\\n')], True)
"""

from __future__ import annotations

import csv
import fcntl
import logging
import os
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from ..errors import FlowReadError

__all__ = [
    "PARQUET_SUFFIXES",
    "CSV_SUFFIXES",
    "name_format",
    "open_regular",
    "content_format",
    "classify",
    "Block",
    "LongLine",
    "CutLine",
    "FlowText",
    "UTF8_BOM",
]

log = logging.getLogger(__name__)

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.gzip", ".gz", ".gzip", ".txt")
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
UTF8_BOM = b"\xef\xbb\xbf"
#: The longest header line read before a file is refused; a v3 header with
#: extra columns is under 2 KB, so 1 MiB only ever stops what is not a header.
MAX_HEADER_BYTES = 1 << 20
# Compressed bytes read from the file at a time, fed to zlib per call, and
# replayed per call after damage (the most output lost at a damaged spot is
# what this many compressed bytes expand to).
_RAW_READ = 1 << 20
_FEED = 1 << 16
_STEP = 256


def name_format(path: Path) -> str:
    """``csv`` or ``parquet`` from a file name; anything else is refused."""
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise FlowReadError(f"{path}: unknown flow file type; expected .csv, .csv.gz or .parquet")


_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def open_regular(path: Path) -> BinaryIO:
    """Open a regular file for reading, unbuffered; refuse every other kind of file.

    The file is opened non-blocking and checked with ``fstat`` on the open
    descriptor, so a FIFO without a writer is refused instead of blocking, and
    what is checked is what is read (no window between a check and the open).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FlowReadError(f"{path}: no such file") from None
    except PermissionError:
        raise FlowReadError(f"{path}: permission denied: cannot open it for reading") from None
    except OSError as exc:
        raise FlowReadError(f"{path}: cannot open: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
            target = f" (it points to {os.path.realpath(path)})" if os.path.islink(path) else ""
            raise FlowReadError(
                f"{path}: is {kind}{target}, not a regular file; flow files must be regular files "
                "that can be read twice: save the flows to a file first"
            )
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def content_format(path: Path) -> str:
    """What a flow file holds, by its first bytes: ``parquet``, ``gzip`` or ``text``."""
    with open_regular(path) as fh:
        return classify(path, _read_up_to(fh, 4, path))


def classify(path: Path, head: bytes) -> str:
    """The format of a file whose first bytes are ``head``, checked against its name.

    The name picks between CSV and Parquet; when the content says otherwise the
    file is refused with what it looks like. Gzip and plain text are both CSV,
    so either is read whatever the name says.

    >>> classify(Path("x.csv"), b"\\x1f\\x8b\\x08\\x00"), classify(Path("x.csv.gz"), b"IPV4")
    ('gzip', 'text')
    >>> classify(Path("x.parquet"), b"IPV4")
    Traceback (most recent call last):
    ...
    flowsentinel.errors.FlowReadError: x.parquet: not a Parquet file; it is text: if it is CSV, name it .csv
    """
    expected = name_format(path)
    if head.startswith(PARQUET_MAGIC):
        if expected != "parquet":
            raise FlowReadError(f"{path}: is a Parquet file, not CSV text: name it .parquet")
        return "parquet"
    if expected == "parquet":
        raise FlowReadError(f"{path}: not a Parquet file; it is {_looks_like(head)}")
    gz_name = path.name.lower().endswith((".gz", ".gzip"))
    if head.startswith(GZIP_MAGIC):
        if not gz_name:
            log.info("%s: gzip-compressed although its name does not say so; reading it decompressed", path)
        return "gzip"
    if gz_name and head:
        log.warning("%s: named as gzip but not gzip-compressed; reading it as plain text", path)
    return "text"


def _looks_like(head: bytes) -> str:
    if not head:
        return "empty"
    if head.startswith(GZIP_MAGIC):
        return "gzip-compressed data: name it .csv.gz"
    body = head[len(UTF8_BOM):] if head.startswith(UTF8_BOM) else head
    if all(32 <= b < 127 or b in (9, 10, 13) for b in body):
        return "text: if it is CSV, name it .csv"
    return "not Parquet (no PAR1 magic at its start): it is damaged or another format"


def _read_up_to(fh: BinaryIO, n: int, path: Path) -> bytes:
    try:
        return fh.read(n) or b""
    except OSError as exc:
        raise FlowReadError(f"{path}: cannot read: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class Block:
    """Whole lines of a flow file: ``data`` ends with a line end unless it is the file's last line."""

    data: bytes
    first_line: int  # 1-based line number of the first line in data
    n_lines: int
    start: int  # offset of data in the (decompressed) text


@dataclass(frozen=True)
class LongLine:
    """A line longer than a block, skipped without being held in memory."""

    line: int
    start: int
    end: int
    head: bytes  # its first bytes, for the rejects file


@dataclass(frozen=True)
class CutLine:
    """The partial line where a damaged or truncated stream stopped."""

    line: int
    start: int
    data: bytes


class _StreamCut(Exception):
    """The stream cannot be read past this point."""


class _Plain:
    def __init__(self, fh: BinaryIO):
        self.fh = fh
        self.raw_position = 0
        self.error_at: int | None = None

    @property
    def consumed(self) -> int:
        return self.raw_position

    def read(self, n: int) -> bytes:
        data = self.fh.read(n) or b""
        self.raw_position += len(data)
        return data


class _Gzip:
    """Gzip members one after another, each output bounded to what was asked for.

    Decompressing here rather than through :mod:`gzip` tells a stream that ends
    inside compressed data (cut short) from one whose data is damaged, at the
    compressed byte where it happens, after every byte before it was delivered.
    """

    def __init__(self, fh: BinaryIO):
        self.fh = fh
        self.raw_position = 0  # compressed bytes read so far
        self._d = zlib.decompressobj(wbits=31)
        self._pending = b""  # compressed bytes not yet taken by zlib
        self._in_member = False  # the current member has received input
        self._members = 0  # members decompressed to their end
        self._member_out = 0  # bytes out of the current member
        self._ended = False
        self._deferred: str | None = None  # an error to raise once the output before it is delivered
        self.error_at: int | None = None  # compressed offset of a problem, about

    def read(self, n: int) -> bytes:
        if self._deferred:
            raise _StreamCut(self._deferred)
        while not self._ended:
            if not self._pending:
                self._pending = self.fh.read(_RAW_READ) or b""
                self.raw_position += len(self._pending)
                if not self._pending:
                    self._ended = True
                    if self._in_member:
                        self.error_at = self.raw_position
                        raise _StreamCut("the gzip stream is cut short (it ends inside compressed data)")
                    return b""
            if not self._in_member and self._members:
                # Between members only zero padding or another member may follow.
                self._pending = self._pending.lstrip(b"\0")
                if not self._pending:
                    continue
            self._in_member = True
            piece, rest = self._pending[:_FEED], self._pending[_FEED:]
            try:
                out, tail = self._feed(piece, n)
            except _Damaged as exc:
                self._ended = True
                self.error_at = self.raw_position - len(self._pending) + exc.at
                after_end = self._members and not self._member_out and not exc.out
                message = ("unexpected data follows the end of the gzip stream" if after_end
                           else f"the gzip data is damaged ({exc.error})")
                self._pending = b""
                if exc.out:
                    self._deferred = message
                    return exc.out
                raise _StreamCut(message) from None
            self._pending = tail + rest
            self._member_out += len(out)
            if self._d.eof:
                self._members += 1
                self._member_out = 0
                self._d = zlib.decompressobj(wbits=31)
                self._in_member = False
            if out:
                return out
        return b""

    def _feed(self, piece: bytes, n: int) -> tuple[bytes, bytes]:
        """Decompress ``piece`` up to ``n`` bytes; return the output and the input zlib did not take."""
        saved = self._d.copy()
        try:
            out = self._d.decompress(piece, n)
            return out, self._left()
        except zlib.error as exc:
            error = exc
        # zlib drops the output of a call that fails: replay the piece in small
        # steps so that only the output of the damaged step is lost.
        self._d, out = saved, b""
        for i in range(0, len(piece), _STEP):
            try:
                out += self._d.decompress(piece[i:i + _STEP], n - len(out))
            except zlib.error:
                break
            if self._d.eof or self._d.unconsumed_tail or len(out) >= n:
                return out, self._left() + piece[i + _STEP:]
        raise _Damaged(out, error, i)

    @property
    def consumed(self) -> int:
        """Compressed bytes zlib has taken so far (where a problem was found)."""
        return self.raw_position - len(self._pending)

    def _left(self) -> bytes:
        return self._d.unused_data if self._d.eof else self._d.unconsumed_tail


class _Damaged(Exception):
    def __init__(self, out: bytes, error: zlib.error, at: int):
        super().__init__(str(error))
        self.out = out
        self.error = error
        self.at = at


class FlowText:
    """The text of one CSV flow file (plain or gzip), read once from start to end.

    After reading, :attr:`complete` says whether the end of the file was
    reached; if not, :attr:`problem` says why, at which line and byte.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fh = open_regular(self.path)
        try:
            self.kind = classify(self.path, _read_up_to(self._fh, 4, self.path))
            if self.kind == "parquet":
                raise FlowReadError(f"{self.path}: is a Parquet file, not CSV text")
            self._fh.seek(0)
        except BaseException:
            self._fh.close()
            raise
        self.size = os.fstat(self._fh.fileno()).st_size
        self._src = _Gzip(self._fh) if self.kind == "gzip" else _Plain(self._fh)
        self.position = 0  # text bytes delivered so far (after decompression)
        self.complete = False
        self.problem: str | None = None
        self.problem_at: int | None = None  # offset in the file itself (compressed, for gzip)
        self._rest = b""
        self._line = 1
        self._header_done = False

    def __enter__(self) -> "FlowText":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._fh.close()

    @property
    def line(self) -> int:
        """The number of the next line to be delivered (1-based)."""
        return self._line

    @property
    def raw_position(self) -> int:
        """Bytes of the file itself (compressed, for gzip) taken so far."""
        return self._src.consumed

    def _read(self, n: int) -> bytes:
        if self.problem is not None or self.complete:
            return b""
        try:
            data = self._src.read(n)
        except _StreamCut as exc:
            self.problem = str(exc)
            self.problem_at = self._src.error_at
            return b""
        except OSError as exc:
            self.problem = f"read error ({exc.strerror or exc})"
            self.problem_at = self._src.consumed
            return b""
        if not data:
            self.complete = True
        self.position += len(data)
        return data

    def header(self, max_bytes: int = MAX_HEADER_BYTES) -> list[str]:
        """The column names of the first line (stripped); the rest stays for :meth:`blocks`."""
        buf = b""
        while True:
            end = buf.find(b"\n")
            if end >= 0 or len(buf) > max_bytes:
                break
            data = self._read(1 << 16)
            if not data:
                break
            buf += data
        if self.problem is not None and end < 0:
            raise FlowReadError(f"{self.path}: cannot read the header line: {self.problem}; "
                                "the file looks cut short or damaged: re-copy or re-download it")
        if end < 0 and len(buf) > max_bytes:
            raise FlowReadError(f"{self.path}: the first line is longer than {max_bytes:,} bytes; "
                                "a flow file starts with a header line of column names")
        if end < 0:
            end = len(buf)
        line, self._rest = buf[:end], buf[end + 1:]
        self._header_done = True
        self._line = 2
        if line.startswith(UTF8_BOM):
            line = line[len(UTF8_BOM):]
        elif line.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise FlowReadError(f"{self.path}: the file is UTF-16 text; save it as UTF-8 CSV")
        try:
            text = line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as exc:
            raise FlowReadError(f"{self.path}: line 1 (the header) is not UTF-8 text (byte {exc.start + 1}): "
                                "save the file as UTF-8 CSV") from None
        if not text.strip():
            if self._rest or self.position > len(line) + 1:
                raise FlowReadError(f"{self.path}: line 1 is blank; a flow file starts with a header line of "
                                    "NetFlow column names")
            raise FlowReadError(f"{self.path}: empty file, expected a header line of NetFlow column names")
        if "\r" in text:
            raise FlowReadError(f"{self.path}: line 1 (the header) holds a carriage return; lines must end "
                                "with LF or CRLF (a file with CR-only line ends must be converted)")
        try:
            return [c.strip() for c in next(csv.reader([text]))]
        except csv.Error as exc:
            raise FlowReadError(f"{self.path}: line 1 (the header) cannot be read as CSV: {exc}") from None

    def blocks(self, block_bytes: int) -> Iterator[Block | LongLine | CutLine]:
        """Yield the lines after the header as :class:`Block` objects, in order.

        A block ends at the last line end outside double quotes, so a quoted
        field with a line break inside stays in one block. A line that does not
        fit in ``block_bytes`` comes as a :class:`LongLine`, and the partial line
        where a damaged stream stopped as a :class:`CutLine`.
        """
        if not self._header_done:
            raise RuntimeError("read the header first")
        buf = self._rest
        self._rest = b""
        start = self.position - len(buf)
        while True:
            ended = False
            while len(buf) < block_bytes:
                data = self._read(block_bytes - len(buf))
                if not data:
                    ended = True
                    break
                buf += data
            if ended:
                if buf and self.problem is None:
                    yield self._block(buf, start)
                elif buf:
                    last = buf.rfind(b"\n") + 1
                    if last:
                        yield self._block(buf[:last], start)
                    yield CutLine(self._line, start + last, buf[last:])
                return
            cut = _safe_cut(buf)
            if cut <= 0:
                # One line fills the whole block: skip to its end without keeping it.
                long = yield from self._skip_long_line(buf, start)
                if long is None:
                    return
                buf, start = long
                continue
            yield self._block(buf[:cut], start)
            buf, start = buf[cut:], start + cut

    def _block(self, data: bytes, start: int) -> Block:
        n = _count(data, 0x0A, 0, len(data)) + (0 if data.endswith(b"\n") else 1)
        block = Block(data, self._line, n, start)
        self._line += n
        return block

    def _skip_long_line(self, buf: bytes, start: int):
        head = buf[:200]
        length = len(buf)
        while True:
            data = self._read(1 << 20)
            if not data:
                if self.problem is not None:
                    yield CutLine(self._line, start, head)
                else:
                    yield LongLine(self._line, start, start + length, head)
                    self._line += 1
                return None
            end = data.find(b"\n")
            if end >= 0:
                yield LongLine(self._line, start, start + length + end + 1, head)
                self._line += 1
                rest_start = start + length + end + 1
                return data[end + 1:], rest_start
            length += len(data)


# Line ends _safe_cut tries from the end before it indexes every quote and line end of the block.
_CUT_TRIES = 64


def _count(buf: bytes, byte: int, start: int, end: int) -> int:
    """How many times ``byte`` occurs in ``buf[start:end]``; numpy's comparison runs without the GIL, which
    ``bytes.count`` holds for the whole scan of a block while the scoring threads wait."""
    if end - start < 1 << 16:
        return buf.count(bytes((byte,)), start, end)
    return int(np.count_nonzero(np.frombuffer(buf, dtype=np.uint8, count=end - start, offset=start) == byte))


def _safe_cut(buf: bytes) -> int:
    """Offset just past the last line end of ``buf`` that lies outside double quotes (0 if none)."""
    last = buf.rfind(b"\n")
    if last < 0:
        return 0
    if buf.find(b'"', 0, last) < 0:
        return last + 1
    # A line end is outside quotes where an even number of quotes comes before it. Walk back over
    # the last few line ends, counting quotes with bytes.count (a pass in C, no index arrays): in
    # a file with quoted fields the last line end is nearly always the one.
    quotes = _count(buf, 0x22, 0, last)
    end = last
    for _ in range(_CUT_TRIES):
        if quotes % 2 == 0:
            return end + 1
        before = buf.rfind(b"\n", 0, end)
        if before < 0:
            break
        quotes -= buf.count(b'"', before, end)
        end = before
    arr = np.frombuffer(buf, dtype=np.uint8, count=last + 1)
    quotes = np.flatnonzero(arr == 0x22)
    ends = np.flatnonzero(arr == 0x0A)
    outside = ends[np.searchsorted(quotes, ends) % 2 == 0]
    if len(outside):
        return int(outside[-1]) + 1
    # Unbalanced quotes everywhere: a stray quote, not a quoted field. Cut at
    # the last line end so the damage stays in the rows around it.
    return last + 1
