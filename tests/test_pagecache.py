"""pagecache.map_model_file: the map reads the file's bytes whatever it does to the page cache, and it drops the
whole file from the cache only when a dropped sample came back in 2 MiB pages."""
import hashlib
import mmap
import os
import random
import sys

import numpy as np
import pytest

from bitgguf import pagecache
from bitgguf.pagecache import (HUGE_PAGE, MIN_FILE_BYTES, SAMPLE_BYTES, SAMPLES, huge_page_share, map_model_file,
                               sample_starts)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="page cache advice is Linux's")


def _write(path, size):
    """Written 4 KiB at a time, as a streaming writer does: the page cache then holds it in small folios."""
    data = np.random.default_rng(7).integers(0, 256, size, dtype=np.uint8).tobytes()
    with open(path, "wb", buffering=0) as f:
        for at in range(0, size, 4096):
            f.write(data[at:at + 4096])
    return hashlib.sha256(data).hexdigest()


def _mapped(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return map_model_file(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)  # the map keeps the file


def test_map_reads_the_file(tmp_path):
    path = tmp_path / "big.bin"
    digest = _write(path, MIN_FILE_BYTES + 3 * HUGE_PAGE + 12345)
    buf, share = _mapped(path)
    try:
        assert hashlib.sha256(buf).hexdigest() == digest
        assert share is None or 0.0 <= share <= 1.0
    finally:
        buf.close()


def test_small_file_is_only_mapped(tmp_path):
    path = tmp_path / "small.bin"
    digest = _write(path, MIN_FILE_BYTES - 1)
    buf, share = _mapped(path)
    assert share is None and hashlib.sha256(buf).hexdigest() == digest
    buf.close()


@pytest.mark.parametrize("size", [MIN_FILE_BYTES, MIN_FILE_BYTES + 3 * HUGE_PAGE + 4096, 751 << 20, 8 << 30])
def test_sample_pieces_are_whole_huge_pages_inside_the_file(size):
    for seed in range(20):
        starts = sample_starts(size, random.Random(seed))
        assert len(starts) == SAMPLES and all(s % HUGE_PAGE == 0 for s in starts)
        assert all(b - a >= SAMPLE_BYTES for a, b in zip(starts, starts[1:])) and starts[-1] + SAMPLE_BYTES <= size
        # one piece in each 32nd of the file (give or take the rounding to whole 2 MiB pages)
        assert all(size * i // SAMPLES - 2 * HUGE_PAGE <= s < size * (i + 1) // SAMPLES for i, s in enumerate(starts))


def test_sample_is_drawn_anew_on_each_load():
    """A fixed sample is what its own reread makes huge: it would miss the rest of the file going back to small
    folios. Different draws pick different pieces, each piece of a run as likely."""
    size = 751 << 20
    draws = [tuple(sample_starts(size, random.Random(seed))) for seed in range(200)]
    assert len(set(draws)) == len(draws)
    firsts = [d[0] for d in draws]  # the first 32nd of the file: 11 of the 375 starts whose piece fits
    assert sorted(set(firsts)) == [k * HUGE_PAGE for k in range(((size - SAMPLE_BYTES) // HUGE_PAGE + 1) // SAMPLES)]


@linux_only
@pytest.mark.parametrize("shares, drops_whole", [((0.0, 1.0), True), ((0.6, 0.5), True), ((0.0, 0.4), False),
                                                 ((0.9,), False)])
def test_whole_file_dropped_only_when_the_sample_comes_back_huge(tmp_path, monkeypatch, shares, drops_whole):
    path = tmp_path / "big.bin"
    size = MIN_FILE_BYTES + 5 * HUGE_PAGE
    digest = _write(path, size)
    answers, dropped, sampled = list(shares), [], []
    monkeypatch.setattr(pagecache, "huge_pages_possible", lambda: True)
    monkeypatch.setattr(pagecache, "map_address", lambda buf: 0)
    monkeypatch.setattr(pagecache, "_fault_sample", lambda buf, starts: (sampled.append(starts), answers.pop(0))[1])
    real_fadvise = os.posix_fadvise
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, at, n, advice: (dropped.append((at, n)),
                                                                         real_fadvise(fd, at, n, advice)))
    buf, share = _mapped(path)
    try:
        assert not answers and share == shares[-1]
        assert all(starts == sampled[0] for starts in sampled)  # the dropped sample is the one read again
        sample = [(start, SAMPLE_BYTES) for start in sampled[0]]
        assert dropped == ([] if len(shares) == 1 else sample + [(0, size)] * drops_whole)
        assert hashlib.sha256(buf).hexdigest() == digest  # dropped pages read back from the file
    finally:
        buf.close()


def _cold_read_is_huge(path, size):
    """Whether this kernel and file system put a file read through a MADV_HUGEPAGE map into 2 MiB folios."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        buf = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
    try:
        buf.madvise(mmap.MADV_HUGEPAGE)
        buf.madvise(22, 0, size)  # MADV_POPULATE_READ
        share = huge_page_share(buf, size)
    except OSError:
        share = None
    buf.close()
    return share is not None and share >= 0.9


@linux_only
def test_written_file_is_read_again_into_huge_pages(tmp_path):
    """A file just written sits in the cache in small folios; after map_model_file, reading it maps 2 MiB pages
    wherever a cold read does (checked first on another file)."""
    size = MIN_FILE_BYTES + 8 * HUGE_PAGE
    _write(tmp_path / "control.bin", size)
    if not pagecache.huge_pages_possible() or not _cold_read_is_huge(tmp_path / "control.bin", size):
        pytest.skip("this kernel or file system reads files into small folios")
    path = tmp_path / "model.bin"
    _write(path, size)
    fd = os.open(path, os.O_RDONLY)
    plain = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    os.close(fd)
    plain.madvise(22, 0, size)
    assert huge_page_share(plain, size) < 0.5  # else this test shows nothing
    plain.close()
    buf, share = _mapped(path)
    try:
        buf.madvise(22, 0, size)  # MADV_POPULATE_READ: read it all
        assert share >= pagecache.HUGE_AGAIN and huge_page_share(buf, size) >= 0.8
    finally:
        buf.close()
