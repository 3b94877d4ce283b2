"""kubecast/allocator.py on this machine's glibc, each case in a fresh Python process (the test
process has its own threads and arenas already): arenas capped, free memory given back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from kubecast import allocator

pytestmark = pytest.mark.skipif(allocator._glibc() is None or sys.platform != "linux", reason="glibc malloc only")

# Non-main arenas are heaps aligned to 64 MB (HEAP_MAX_SIZE): the part in use is mapped read-write,
# the rest of the reservation follows it with no access.
COUNT_ARENAS = """
def arenas():
    lines = open("/proc/self/maps").read().splitlines()
    count = 0
    for line, after in zip(lines, lines[1:] + [""]):
        parts, following = line.split(), after.split()
        low, high = (int(x, 16) for x in parts[0].split("-"))
        if len(parts) != 5 or parts[1] != "rw-p" or low % (64 << 20):
            continue
        reserve = 0
        if len(following) == 5 and following[1] == "---p":
            start, end = (int(x, 16) for x in following[0].split("-"))
            reserve = end - start if start == high else 0
        count += (high - low) + reserve == 64 << 20
    return count
"""

THREADS = """
import threading
started, release = threading.Barrier(9), threading.Event()
def work():
    held = [bytearray(4096) for _ in range(200)]  # below the mmap threshold: from the thread's arena
    started.wait()
    release.wait()
for _ in range(8):
    threading.Thread(target=work).start()
started.wait()
"""


def run(code: str, env: dict[str, str] | None = None) -> dict[str, int]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | (env or {})
    finished = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, env=environment
    )
    assert finished.returncode == 0, finished.stderr
    result: dict[str, int] = json.loads(finished.stdout.splitlines()[-1])
    return result


def test_eight_threads_share_one_arena_once_capped_and_take_eight_otherwise() -> None:
    code = "from kubecast import allocator\ncapped = {cap}\n" + COUNT_ARENAS + THREADS
    code += "print(json.dumps({{'capped': capped, 'arenas': arenas()}}))\nrelease.set()\n"
    code = "import json\n" + code
    capped = run(code.format(cap="allocator.cap_arenas()"))
    default = run(code.format(cap="False"))
    assert capped == {"capped": True, "arenas": 1}  # the main arena and one more: two
    assert default["arenas"] >= 8  # one per thread, up to 8 per core
    # MALLOC_ARENA_MAX, when set, is the operator's choice and stays so
    assert run(code.format(cap="allocator.cap_arenas()"), {"MALLOC_ARENA_MAX": "4"})["capped"] is False


def test_memory_freed_below_live_chunks_goes_back_to_the_system_when_released() -> None:
    code = """
    import json
    from kubecast import allocator
    def resident():
        return int(open("/proc/self/statm").read().split()[1]) * 4096 >> 20
    # A drained backlog: 80 MB of 4 KB records, each hundredth with a small object that outlives it,
    # so the freed records are holes below live chunks, which glibc keeps by itself.
    backlog, kept = [], []
    for index in range(20_000):
        backlog.append(bytearray(4096))
        if index % 100 == 0:
            kept.append(bytearray(600))
    full = resident()
    del backlog
    drained = resident()
    released = allocator.release_free_memory()
    print(json.dumps({"full": full, "drained": drained, "released": released, "after": resident()}))
    """
    figures = run(code)
    assert figures["full"] - figures["drained"] < 20, figures  # glibc kept most of the 80 MB
    assert figures["released"] == 1 and figures["drained"] - figures["after"] > 60, figures


def test_frame_sized_buffers_are_given_back_as_a_queue_drains_once_the_threshold_is_pinned() -> None:
    code = """
    import json, threading
    from kubecast import allocator
    def resident():
        return int(open("/proc/self/statm").read().split()[1]) * 4096 >> 20
    figures = {{"pinned": {pin}}}
    def starved_spell():  # on a thread of its own, as the encoder's pictures are: in a non-main arena
        segment = bytearray(4 << 20)  # mapped on its own; freeing it raises glibc's threshold to 4 MB
        del segment
        # a queue of 100 640x360 pictures filled while starved, and small objects made meanwhile that outlive it
        frames, kept = [], []
        for _ in range(100):
            frames.append(bytearray(345_600))
            kept.append(bytearray(700))
        full = resident()
        del frames
        figures.update(full=full, drained=resident())
    thread = threading.Thread(target=starved_spell)
    thread.start()
    thread.join()
    print(json.dumps(figures))
    """
    pinned = run(code.format(pin="allocator.pin_mmap_threshold()"))
    dynamic = run(code.format(pin="False"))
    # 33 MB of pictures: given back as the queue drains when pinned, kept by glibc's raised threshold otherwise
    assert pinned["pinned"] is True and pinned["full"] - pinned["drained"] > 25, pinned
    assert dynamic["full"] - dynamic["drained"] < 5, dynamic
    # MALLOC_MMAP_THRESHOLD_, when set, is the operator's choice and stays so
    operators = run(code.format(pin="allocator.pin_mmap_threshold()"), {"MALLOC_MMAP_THRESHOLD_": "65536"})
    assert operators["pinned"] is False
