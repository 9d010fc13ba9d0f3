"""Keep freed chunk memory for the next chunk instead of handing it back to the kernel.

Scoring a file allocates the same few hundred kilobytes to megabytes per
column for every chunk of flows. glibc's malloc serves such blocks with
``mmap`` once its adaptive threshold has grown, and returns freed memory at
the top of the heap to the kernel, so every chunk faults its pages in
again: on the 1M-flow benchmark file that was 1.7 of `detect`'s 8.9 CPU
seconds spent in the kernel. :func:`keep_freed_memory` asks malloc to serve
blocks up to its largest ``mmap`` threshold from the heap and to keep what is
freed (up to a bound), so the next chunk reuses the same pages. The peak
resident size does not grow (the memory is reused, not added to).

pyarrow's default pool (mimalloc) hands its pages back on its own terms, so
each chunk's parse faulted them in again as well: :func:`keep_freed_memory`
also points pyarrow at the system allocator, which the settings above then
cover. On the 1M-flow benchmark file that took ``detect``'s kernel time from
1.4 to 0.5 s, measured with ``/usr/bin/time`` (``docs/performance.md``).

Only glibc has ``mallopt``; elsewhere (musl, macOS, Windows) this does
nothing. It changes the whole process, so it is for a command's process
(``flowsentinel detect``), not for a library call.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

__all__ = ["keep_freed_memory"]

log = logging.getLogger(__name__)

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
#: glibc's largest mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX): blocks below it come from the heap.
MMAP_THRESHOLD = 32 << 20
#: Freed memory at the top of the heap kept rather than returned, and the extra asked for at each growth.
KEEP = 1 << 30
TOP_PAD = 64 << 20

_done = False


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as the module describes, once per process; whether it applied."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = all(mallopt(param, value) == 1 for param, value in
             ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, KEEP), (_M_TOP_PAD, TOP_PAD)))
    if not ok:
        log.debug("mallopt refused a setting; malloc keeps its defaults for the rest")
    else:
        _arrow_on_malloc()
    _done = ok
    return ok


def _arrow_on_malloc() -> None:
    """Have pyarrow allocate through malloc, so that its buffers reuse the pages malloc now keeps."""
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - pyarrow comes with the readers' dependencies
        return
    pa.set_memory_pool(pa.system_memory_pool())
