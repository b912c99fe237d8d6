"""keep_freed_memory: glibc keeps freed blocks in the process where it applies; a no-op elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import universal_models as um

pytestmark = pytest.mark.backend_independent

# Resident memory after a 256 MiB block was written and freed: glibc normally serves such a
# block with mmap and unmaps it on free; with the settings it stays in the heap for reuse.
_SCRIPT = """
import numpy as np
from universal_models.runtime.allocator import keep_freed_memory

def resident_mib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024

print(keep_freed_memory())
before = resident_mib()
block = np.ones(256 * 2**20 // 8)
del block
print(resident_mib() - before)
"""


def _run(keep: str) -> tuple[str, float]:
    environment = {**os.environ, "UNIVERSAL_MODELS_KEEP_MEMORY": keep}
    output = subprocess.run([sys.executable, "-c", _SCRIPT], env=environment, capture_output=True, text=True,
                            check=True).stdout.split()
    return output[0], float(output[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc settings")
def test_freed_memory_stays_for_reuse_and_the_environment_switches_it_off():
    applied, kept = _run("1")
    skipped, returned = _run("0")
    assert (applied, skipped) == ("True", "False")
    assert kept > 200, kept  # the freed 256 MiB are still resident, ready for the next tensor
    assert returned < 50, returned  # the default: handed back to the system


def test_exported_from_the_package():
    assert um.keep_freed_memory is um.allocator.keep_freed_memory
