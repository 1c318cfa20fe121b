"""Mapping a model file so that decode reads it through 2 MiB pages.

Decode streams every weight once per token. Through 4 KiB pages that costs a TLB miss and a page walk every 4 KiB,
and on the machines we measured it reads a third slower than through 2 MiB pages (README, "Decode and the page
cache"). Linux maps a file's pages 2 MiB at a time where its page cache holds them as 2 MiB folios and the map is
aligned (it aligns large file maps itself). Whether it does depends on how the pages came into the cache: read
through a map advised MADV_HUGEPAGE, they are 2 MiB folios; written by a converter or a download, they are mostly
small ones, and stay so while the cache keeps them.

`map_model_file` therefore maps the file, advises huge pages, faults in a 64 MiB sample (32 pieces of 2 MiB, one at
random in each 32nd of the file) and asks /proc/self/smaps how much of that is in 2 MiB pages. Where less than 90%
is, and the sample comes back in 2 MiB pages once dropped and read again, it drops the whole file from the page
cache (POSIX_FADV_DONTNEED leaves pages that other processes map), so that decode reads it once more from disk, into
2 MiB folios that later loads find in the cache.
"""
from __future__ import annotations

import mmap
import os
import random
import sys

import numpy as np

HUGE_PAGE = 2 << 20
# Below this a file has few whole 2 MiB pages and decode hardly walks pages: not worth a second read (and the
# sample's pieces, 2 MiB each and a 32nd of the file apart, would overlap).
MIN_FILE_BYTES = 32 * HUGE_PAGE
# The sample: SAMPLES pieces of SAMPLE_BYTES spread over the file (a file can be cached part in 2 MiB folios, part
# not: one read through a map, say, and another written). Eight pieces of 4 MiB saw all of a bench file in 2 MiB
# pages where 25% of it was not (it read 10% slower than anonymous memory); 32 pieces of 2 MiB saw 72%. The pieces
# are drawn at random on each load: the same pieces every time are the ones a reread of the sample brings back in
# 2 MiB folios, so once something else had brought the rest of a bench file back in small ones, the sample still
# saw 100% where 58% of the file was (its decode read 5% slower than from anonymous memory).
SAMPLES = 32
SAMPLE_BYTES = HUGE_PAGE
# Fewer 2 MiB pages than this share of the sample: drop the file's cached pages and read it again, where the sample,
# dropped and read again, came back at least HUGE_AGAIN in 2 MiB pages (a drop can miss pages that the kernel
# holds in per-CPU lists, which then come back small, with their neighbours).
REREAD_BELOW = 0.9
HUGE_AGAIN = 0.5
_MADV_POPULATE_READ = 22  # Linux 5.14; not exported by Python 3.11's mmap
_THP_SETTING = "/sys/kernel/mm/transparent_hugepage/enabled"


def huge_pages_possible() -> bool:
    """Linux with transparent huge pages not turned off, and a Python mmap that can advise them."""
    if not sys.platform.startswith("linux") or not hasattr(mmap, "MADV_HUGEPAGE"):
        return False
    try:
        with open(_THP_SETTING) as f:
            return "[never]" not in f.read()
    except OSError:
        return False


def map_address(buf: mmap.mmap) -> int:
    """The address the map starts at (a read-only map has no writable buffer for ctypes, so through numpy)."""
    view = np.frombuffer(buf, dtype=np.uint8, count=1)
    try:
        return view.ctypes.data
    finally:
        del view  # an exported buffer would keep the map from closing


def huge_page_share(buf: mmap.mmap, faulted: int) -> float | None:
    """The share of the map's `faulted` bytes (those faulted in so far) that are mapped as 2 MiB pages
    (FilePmdMapped), or None where the kernel does not say."""
    if faulted <= 0:
        return None
    start = f"{map_address(buf):x}-"
    try:
        with open("/proc/self/smaps") as f:
            in_map = False
            for line in f:
                if line[0] in "0123456789abcdef" and "-" in line.split(" ", 1)[0]:
                    in_map = line.startswith(start)
                elif in_map and line.startswith("FilePmdMapped:"):
                    return min(1.0, int(line.split()[1]) * 1024 / faulted)
    except (OSError, ValueError):
        return None
    return None


def sample_starts(size: int, rng: random.Random) -> list[int]:
    """Where the sample's pieces start in a file of `size` bytes (at least SAMPLES pieces): 2 MiB-aligned, one drawn
    by rng from each of SAMPLES runs of the file's whole 2 MiB pages."""
    slots = (size - SAMPLE_BYTES) // HUGE_PAGE + 1  # 2 MiB-aligned starts whose piece fits
    bounds = [slots * i // SAMPLES for i in range(SAMPLES + 1)]
    return [rng.randrange(lo, hi) * HUGE_PAGE for lo, hi in zip(bounds, bounds[1:])]


def _fault_sample(buf: mmap.mmap, starts: list[int]) -> float | None:
    try:
        for start in starts:
            buf.madvise(_MADV_POPULATE_READ, start, SAMPLE_BYTES)
    except OSError:
        return None  # an old kernel: no MADV_POPULATE_READ to sample with
    return huge_page_share(buf, len(starts) * SAMPLE_BYTES)


def _drop_cached(buf: mmap.mmap, fd: int, start: int, length: int) -> None:
    """Unmap [start, start + length) from this map and drop those file pages from the page cache; the next read
    brings them back from the file, as 2 MiB folios under MADV_HUGEPAGE."""
    buf.madvise(mmap.MADV_DONTNEED, start, length)
    os.posix_fadvise(fd, start, length, os.POSIX_FADV_DONTNEED)


def map_model_file(fd: int, size: int) -> tuple[mmap.mmap, float | None]:
    """A read-only map of the whole file, through 2 MiB pages where this kernel and file system can give them,
    with the share of a sample that is (None where unknown or not tried). Loading stays lazy: apart from the
    sample, pages are faulted in as they are read, as in any map.

    The whole file is dropped from the cache only once the sample, dropped and read again, came back in 2 MiB
    pages: where the file system keeps small folios whatever we do, a load costs a 64 MiB read, not the file's."""
    buf = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    if size < MIN_FILE_BYTES or not huge_pages_possible() or map_address(buf) % HUGE_PAGE:
        return buf, None
    starts = sample_starts(size, random.Random())
    try:
        buf.madvise(mmap.MADV_HUGEPAGE)
        share = _fault_sample(buf, starts)
        if share is None or share >= REREAD_BELOW:
            return buf, share
        os.fdatasync(fd)  # pages still dirty from the writer cannot be dropped
        for start in starts:
            _drop_cached(buf, fd, start, SAMPLE_BYTES)
        share = _fault_sample(buf, starts)
        if share is not None and share >= HUGE_AGAIN:
            _drop_cached(buf, fd, 0, size)
    except OSError:
        pass  # advice only: the map reads the same bytes whatever became of it
    return buf, share
