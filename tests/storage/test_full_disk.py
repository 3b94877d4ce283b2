"""A local store on a disk that fills up: a real file system (a 1 MiB tmpfs mounted for the test).

The encoder says clearly that the store is full, counts it, never leaves a torn object (obstore
writes a temporary file and renames it; a write that fails removes its temporary file), and
stores what waited once there is space again.  Mounting needs root, as CI runs; elsewhere the
test is skipped and says why.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import subprocess
from pathlib import Path

import pytest
from helpers import wait_until
from prometheus_client import REGISTRY

from kubecast.encoder.publisher import Publisher
from kubecast.encoder.segmenter import Segment
from kubecast.storage import EncoderProgress, Store, layout, storage_full

SEGMENT_BYTES = 48 * 1024


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)  # something still holds it open


def fill(path: Path) -> None:
    """Write zeros until the file system refuses."""
    with contextlib.suppress(OSError), open(path, "wb", buffering=0) as filler:
        while True:
            filler.write(b"\0" * 4096)


def segment(number: int) -> Segment:
    return Segment(number, number * 2000, 2000, random.Random(number).randbytes(SEGMENT_BYTES), False)


def test_a_full_disk_is_reported_and_nothing_torn_is_left(small_disk, caplog):
    store = Store(str(small_disk / "store"))
    publisher = Publisher(store=store, channel="c", instance="A", segment_duration_ms=2000, rng=random.Random(1))
    errors = REGISTRY.get_sample_value("kubecast_encoder_store_errors_total", {"reason": "full"}) or 0.0
    publisher.start()
    filler = small_disk / "filler"
    try:
        publisher.segment("v", segment(0))
        progress_key = small_disk / "store" / layout.progress_key("c", "A")
        wait_until(progress_key.exists, timeout=10, what="progress.json")
        fill(filler)
        with caplog.at_level(logging.WARNING, logger="kubecast.encoder"):
            for number in range(1, 6):
                publisher.segment("v", segment(number))
            wait_until(
                lambda: any("the store is full (no space left on device)" in r.getMessage() for r in caplog.records),
                timeout=10,
                what="the full-disk log line",
            )
        assert (REGISTRY.get_sample_value("kubecast_encoder_store_errors_total", {"reason": "full"}) or 0) > errors
        # Whatever exists is whole; no temporary file is left behind by a failed write.
        for path in (small_disk / "store").rglob("*"):
            if path.is_file():
                assert "#" not in path.name, f"a temporary file was left: {path}"
                if path.suffix == ".m4s":
                    assert path.read_bytes() == segment(int(path.stem)).data, f"{path} is torn"
        EncoderProgress.from_json(progress_key.read_bytes())  # the index is never torn either

        filler.unlink()  # space returns
        wait_until(
            lambda: (
                [r.number for r in EncoderProgress.from_json(progress_key.read_bytes()).segments["v"]]
                == [0, 1, 2, 3, 4, 5]
            ),
            timeout=15,
            what="every segment stored once there is space",
        )
        for number in range(6):
            assert store.get_sync(layout.segment_key("c", "A", "v", number)) == segment(number).data
    finally:
        publisher.stop()
        filler.unlink(missing_ok=True)


def test_storage_full_recognises_enospc_as_obstore_and_python_report_it():
    assert storage_full(OSError(28, "No space left on device"))
    assert storage_full(RuntimeError("Unable to copy data to file: No space left on device (os error 28)"))
    assert not storage_full(ConnectionError("connection refused (os error 111)"))
