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
