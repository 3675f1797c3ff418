"""C twins of the heap-graph algorithms in :mod:`cyclescope.heapalgo` (same results,
same exceptions, faster); that module's docstrings define what each returns.

Integer array arguments take any buffer of int64 items (``array('q')``); masks any
buffer of single bytes (``bytes``, ``bytearray``). Invalid input raises ``ValueError``.
"""

from array import array

from typing_extensions import Buffer  # collections.abc.Buffer from 3.12 on

def bfs(
    n: int,
    offsets: Buffer,
    targets: Buffer,
    sources: Buffer,
    /,
    blocked: Buffer | None = None,
    fallback: Buffer | None = None,
) -> tuple[array[int], array[int]]:
    """``(parent, dist)``, as ``heapalgo._bfs_py``."""

def transpose(n: int, offsets: Buffer, targets: Buffer, /) -> tuple[array[int], array[int]]:
    """``(roffsets, rtargets)``: the referrers of each node, as ``heapalgo._transpose_py``."""

def dominators(
    n: int, offsets: Buffer, targets: Buffer, sources: Buffer, /, blocked: Buffer | None = None
) -> tuple[array[int], array[int]]:
    """``(idom, order)``, as ``heapalgo._dominators_py``."""

def retained_sizes(idom: Buffer, order: Buffer, sizes: Buffer, /) -> array[int]:
    """Retained size per node, as ``heapalgo._retained_sizes_py``."""

def top_indices(values: Buffer, k: int, /, eligible: Buffer | None = None) -> array[int]:
    """Indices of the ``k`` largest values, as ``heapalgo._top_indices_py``."""

def positions(addresses: Buffer, queries: Buffer, /) -> array[int]:
    """First index in ``addresses`` of each query, or -1, as ``heapalgo._positions_py``."""

def object_positions(objects: list[object], queries: Buffer, /) -> array[int]:
    """``positions`` of the objects' ids, as ``heapalgo._object_positions_py``."""

def group_totals(
    type_ids: Buffer, group_of: Buffer, ngroups: int, sizes: Buffer, /, mask: Buffer | None = None,
    samples: int = 0,
) -> tuple[array[int], array[int], array[int]]:
    """``(counts, bytes, firsts)`` per group, as ``heapalgo._group_totals_py``."""

def new_nodes(
    before: Buffer, type_ids: Buffer, group_of: Buffer, old_type_ids: Buffer, old_group_of: Buffer,
    reached: Buffer, /,
) -> bytearray:
    """Mask of the reached nodes new since the older graph, as ``heapalgo._new_nodes_py``."""
