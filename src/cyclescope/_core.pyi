"""C twins of the graph functions in :mod:`cyclescope.graph` and of the heap snapshot in
:mod:`cyclescope.heapgraph` (same results, faster), and the two list operations of
:mod:`cyclescope.capturing` (no pure twin).

Integer array arguments take any buffer of int64 items (``array('q')``); byte
arguments any buffer of single bytes (``bytes``, ``bytearray``). Inconsistent
input raises ``ValueError``.
"""

from array import array
from typing import Any

from typing_extensions import Buffer  # collections.abc.Buffer from 3.12 on

def build_graph(
    objects: list[object] | tuple[object, ...], /
) -> tuple[array[int], array[int], array[int], array[int], list[type], int]:
    """``(offsets, targets, sizes, type_ids, types, total_size)``, as ``graph._build_graph_py``."""

def heap_snapshot(
    seeds: list[object] | tuple[object, ...], /
) -> tuple[memoryview, memoryview, list[type], memoryview, memoryview, memoryview, bytearray, bytearray, int]:
    """``(addresses, type_ids, types, sizes, offsets, targets, external, tracked, total_size)``
    of the seeds and everything they reach, as ``heapgraph._heap_graph_py``; the int64
    arrays are read-only memoryviews (format ``'q'``) of memory handed over without a copy."""

def scc(n: int, offsets: Buffer, targets: Buffer, /) -> tuple[array[int], int, bytearray]:
    """``(comp, ncomp, cyclic)``, as ``graph._scc_py``."""

def representative_cycles(
    n: int,
    offsets: Buffer,
    targets: Buffer,
    comp: Buffer,
    ncomp: int,
    cyclic_bytes: Buffer,
    rank: Buffer,
    /,
) -> tuple[array[int], array[int], array[int]]:
    """``(starts, nodes, edges)``, as ``graph._representatives_py``."""

def attribute_acyclic(
    n: int, offsets: Buffer, targets: Buffer, comp: Buffer, cyclic_bytes: Buffer, /
) -> array[int]:
    """``owner`` per node, as ``graph._attribute_py``."""

def component_totals(
    n: int, comp: Buffer, ncomp: int, owner: Buffer, sizes: Buffer, /
) -> tuple[array[int], array[int], array[int]]:
    """``(size, objects held, bytes held)`` per component, as ``graph._component_totals_py``."""

def cycle_shapes(
    ncomp: int, starts: Buffer, nodes: Buffer, edges: Buffer, type_ids: Buffer, /
) -> tuple[array[int], array[int]]:
    """``(shape_of, first)``, as ``graph._cycle_shapes_py``."""

def members_by_owner(n: int, owner: Buffer, ncomp: int, /) -> tuple[array[int], array[int]]:
    """``(starts, members)``, as ``graph._members_py``."""

def node_ranks(
    n: int,
    offsets: Buffer,
    targets: Buffer,
    comp: Buffer,
    type_ids: Buffer,
    type_major: Buffer,
    type_minor: Buffer,
    /,
) -> array[int]:
    """``rank`` per node, as ``graph._node_ranks_py``."""

def shape_totals(
    shape_of: Buffer, nshapes: int, held_objects: Buffer, held_bytes: Buffer, /
) -> tuple[array[int], array[int], array[int]]:
    """``(count, objects, bytes)`` per shape, as ``graph._shape_totals_py``."""

def release_garbage(objects: list[Any], /) -> tuple[int, int]:
    """Free the cyclic garbage in ``objects`` as gc's delete step would, without a
    collection, and empty the list: ``(cleared, kept)``.

    Objects referenced from outside the list and the objects it holds (and all they
    reach) are kept intact, as are objects with a legacy ``tp_del``, an unrun
    finalizer or live weak references, and all they reach; ``kept`` counts them
    (a full collection may still free some). ``cleared`` counts ``tp_clear`` calls.
    """

def move_tail(src: list[Any], base: int, dst: list[Any], /) -> int:
    """``dst.extend(src[base:]); del src[base:]`` handing the references over instead of
    copying them; returns how many items moved."""
