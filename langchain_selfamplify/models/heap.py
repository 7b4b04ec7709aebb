"""Large freed blocks handed back to the system on a CPU, not kept in the C heap.

glibc's ``malloc`` serves a block smaller than its *mmap threshold* from its heap, and
each time a larger mapped block is freed it raises that threshold (up to 32 MiB). A
decoding queue on a CPU allocates its rows' key and value buffers (a few MiB to tens of
MiB per layer, a little larger at each regrowth, fewer rows when rows leave) and frees
the old ones. Freed heap blocks too small for the next buffer stay resident: decoding 64
replies as long as the capable-model table's, with Qwen2.5-1.5B's key-value layout, the
process's peak rose 1.26x the bytes its buffers held, and 1.08x with large blocks mapped
(``benchmarks/decode_heap.py``). A 64-slot chunk of the table had peaked at 8.22 GiB
resident, over the grid's 8 GiB bound (``benchmarks/qwen_memory.py``).

:func:`map_large_blocks` fixes the threshold, so blocks from it up are mapped and
unmapped on their own and a freed buffer's memory goes back at once. Smaller blocks
(a decoding step's activations) stay in the heap, where reusing them costs nothing.
The setting is the process's, and this package makes it only when it decodes on a
CPU; :data:`HEAP_BLOCK_LIMIT` and the function are public for applications that want
it sooner.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

HEAP_BLOCK_LIMIT = 4 * 2**20
"""Bytes from which a block is mapped on its own (``M_MMAP_THRESHOLD``). Under it: a
decoding step's activations (a 1.5B model's MLP output for 64 rows is about 2.3 MiB),
reused from the heap at no cost; from it up: the rows' key and value buffers of a
decoding queue. A lower limit maps activations too, and each fresh mapping costs page
faults at every step."""

_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
_applied: int | None = None


def map_large_blocks(limit: int = HEAP_BLOCK_LIMIT) -> bool:
    """Have glibc map every block of at least ``limit`` bytes on its own, so freeing it
    returns its memory to the system (see the module docstring). Idempotent.

    Args:
        limit: The threshold in bytes. Defaults to :data:`HEAP_BLOCK_LIMIT`.

    Returns:
        Whether the setting is in effect: ``False`` where the C library is not glibc
        (macOS, Windows, musl), whose allocators need no such setting or offer none.
    """
    global _applied
    if _applied == limit:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    if libc.mallopt(_M_MMAP_THRESHOLD, limit) != 1:
        return False
    _applied = limit
    return True
