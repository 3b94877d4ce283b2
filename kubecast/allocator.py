"""Keeping a long-running process's resident memory near what it uses, under glibc's malloc.

The one-hour soak's encoders grew by three quarters in the spells when the machine was starved
of CPU and never came down (README).  Reproduced, it is memory not in use: an encoder fed three
contributions faster than it encodes them (its frame queues full, as when starved), one after
another as after link drops, went from 70 MB resident to 296 MB, of which glibc counted 49 MB
in use; ``malloc_trim(0)`` brought it back to 111 MB.  Two habits of glibc keep such memory:

- Memory freed inside a heap, below chunks still in use, stays resident: glibc gives back only
  the top of a heap by itself.  A backlog that has drained (the frame queues of a starved encoder,
  an ingest's link queue of up to 3000 records) leaves such holes.  ``release_free_memory``
  (``malloc_trim(0)``) returns every free page; ``start_trimming`` calls it every
  ``TRIM_SECONDS``, which takes milliseconds.
- Every new thread that allocates gets an arena of its own, up to 8 per core, and an arena's free
  memory serves only the threads that use it, so each arena keeps its own high-water mark.  An
  encoder has over a dozen threads.  ``cap_arenas`` allows two in all, unless
  ``MALLOC_ARENA_MAX`` was set, which stays the operator's choice.
- A buffer of ``M_MMAP_THRESHOLD`` or more (128 KiB at start) gets a mapping of its own, which
  freeing it unmaps; but glibc raises that threshold to the size of every mapped buffer freed
  (up to 32 MiB), so once a frame, a packet or a segment's bytes have been freed, later buffers of
  that size come from the arena instead.  A starved spell then leaves a frame queue's worth of
  pictures (hundreds of KB each) in the heap between small chunks that outlive them: the encoders
  of the one-hour soak kept 30 MB after each loaded spell and crept up in between, which
  ``malloc_trim`` did not give back.  ``pin_mmap_threshold`` sets the threshold, which also stops
  glibc from moving it: large buffers stay mapped on their own and leave no holes (a mapping and a
  page fault per large buffer, microseconds at a few hundred a second).  ``MALLOC_MMAP_THRESHOLD_``,
  when set, stays the operator's choice.

``keep_near_use`` does all three as a component starts: the encoders, ingests and packager
(``kubecast/runtime.py``) and the endpoint, whose object cache replaces segments of hundreds of KB
all the time.  In the endpoint the pin is not cheap: it serves thousands of such buffers a second,
and ``bench/origin.py`` measured its segment throughput about halved with the pin (600 kB segments,
signed cache hits at 0.22 of nginx's bytes/s, 0.44 with ``MALLOC_MMAP_THRESHOLD_=33554432``; other
segment kinds alike).  It was kept because the one-hour soak that met the memory goal ran with it;
a threshold between the two, measured against both, is still to be found.
On a C library other than glibc they are no-ops that say so (they return False).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import threading

ARENAS = 2
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value, kept instead of raised
TRIM_SECONDS = 60.0
_M_ARENA_MAX = -8  # mallopt's parameter numbers, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError, TypeError):
        return None  # not glibc (musl has no malloc_trim), or no C library to load
    return libc


def cap_arenas(count: int = ARENAS) -> bool:
    """At most ``count`` malloc arenas from now on (threads that already have one keep it, so call
    it before starting threads); False when the C library cannot, or ``MALLOC_ARENA_MAX`` decides."""
    libc = _glibc()
    if libc is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, count))


def pin_mmap_threshold(size: int = MMAP_THRESHOLD) -> bool:
    """Buffers of ``size`` bytes or more mapped on their own from now on, whatever was freed before;
    False when the C library cannot, or ``MALLOC_MMAP_THRESHOLD_`` decides."""
    libc = _glibc()
    if libc is None or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, size))


def release_free_memory() -> bool:
    """Give every free page of every arena back to the system; True when some were."""
    libc = _glibc()
    return libc is not None and bool(libc.malloc_trim(0))


def start_trimming(interval: float = TRIM_SECONDS) -> threading.Event | None:
    """Release free memory every ``interval`` seconds from a daemon thread, until the returned
    event is set; None when the C library cannot."""
    if _glibc() is None:
        return None
    stop = threading.Event()

    def trim() -> None:
        while not stop.wait(interval):
            release_free_memory()

    threading.Thread(target=trim, name="malloc-trim", daemon=True).start()
    return stop


def keep_near_use() -> None:
    """All of the above, as every long-running component starts: before it starts any thread."""
    cap_arenas()  # each thread started before would keep an arena of its own
    pin_mmap_threshold()
    start_trimming()
