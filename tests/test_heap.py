"""Large freed blocks go back to the system once decoding on a CPU has set it
(``models/heap.py``)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from langchain_selfamplify.models import heap

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

FREED = r"""
import sys, torch
from langchain_selfamplify.models import heap
if sys.argv[1] == "1":
    assert heap.map_large_blocks()

def own_memory():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("RssAnon")) * 1024

large = torch.ones(8 * 2**20 // 4)
del large  # freeing a mapped 8 MiB block raises glibc's threshold past 6 MiB
buffer = torch.ones(6 * 2**20 // 4)
after = torch.ones(1000)  # a block behind the buffer, so the heap cannot shrink past it
before = own_memory()
del buffer
print((before - own_memory()) / 2**20)
"""


def freed_mib(mapped: bool) -> float:
    """MiB a fresh process gets back when it frees a 6 MiB buffer in the heap's way."""
    done = subprocess.run([sys.executable, "-c", FREED, str(int(mapped))],
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_a_freed_buffer_goes_back_to_the_system_once_large_blocks_are_mapped():
    assert freed_mib(mapped=False) < 1  # glibc's default keeps it in the heap
    assert freed_mib(mapped=True) >= 6


def test_other_c_libraries_are_left_as_they_are(monkeypatch):
    monkeypatch.setattr(heap, "_applied", None)
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert heap.map_large_blocks() is False


def test_decoding_on_a_cpu_maps_large_blocks(tiny_slm, demo_pool, monkeypatch):
    from langchain_selfamplify import AmplifiedPrompt

    calls = []
    monkeypatch.setattr(heap, "map_large_blocks", lambda: calls.append(1) or True)
    prompt = AmplifiedPrompt(examples=list(demo_pool[:2]))
    texts = [tiny_slm.format_prompt(prompt.to_messages(q)) for q in demo_pool[10:13]]
    tiny_slm.decode_stats.reset()
    tiny_slm.generate(texts, max_new_tokens=2)
    assert tiny_slm.decode_stats.steps  # the decoding queue ran
    assert calls
