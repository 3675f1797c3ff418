"""The one workload every contestant of ``bench_capture.py`` runs: N reference cycles
of five shapes, in equal numbers, and a large live heap for the freeze case.

Attribute and key names are chosen not to appear in any type, function or module
name, so that finding one in a tool's output means the tool named that edge.
"""

from __future__ import annotations

#: shape -> (attribute or key the cycle goes through, tokens cyclescope's signature must hold)
SHAPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "attribute pair": ("partner", (".partner",)),
    "self-referencing dict": ("myself", ("['myself']",)),
    "stored exception": ("last_error", (".last_error", ".__traceback__", ".tb_frame", "local 'holder'")),
    "closure cell": ("on_close", (".on_close", ".__closure__", ".cell_contents")),
    "bound method": ("callback", (".callback", ".__self__")),
}

#: The instance attribute names of the workload (the dict key 'myself' is not one).
ATTRIBUTE_NAMES = ("partner", "last_error", "on_close", "callback")
#: Names of the two traceback edges of the exception shape.
TRACEBACK_EDGES = ("tb_frame", "__traceback__")


class PairNode:
    """a.partner = b; b.partner = a"""


class ErrorHolder:
    """holder.last_error = exc, whose traceback's frame holds ``holder`` as a local."""


class ClosureOwner:
    """owner.on_close = a function that closes over ``owner``."""


class CallbackOwner:
    """self.callback = self.handle_event (a bound method stored on its instance)."""

    def handle_event(self) -> "CallbackOwner":
        return self


def _fail(holder: ErrorHolder) -> None:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        holder.last_error = exc


def _close_over(owner: ClosureOwner) -> None:
    def closer() -> ClosureOwner:
        return owner

    owner.on_close = closer


def cycles_per_shape(n: int) -> int:
    """How many cycles of each shape ``make_cycles(n)`` makes (n // 5)."""
    return n // len(SHAPES)


def make_cycles(n: int) -> int:
    """Make ``n // 5`` cycles of each of the five shapes, keep none; return how many."""
    per_shape = cycles_per_shape(n)
    if per_shape == 0:
        return 0
    for _ in range(per_shape):
        a = PairNode()
        b = PairNode()
        a.partner = b
        b.partner = a
        d: dict = {}
        d["myself"] = d
        _fail(ErrorHolder())
        _close_over(ClosureOwner())
        c = CallbackOwner()
        c.callback = c.handle_event
    del a, b, c, d  # the frame object the tracebacks keep (via f_back) holds no cycle
    return per_shape * len(SHAPES)


class Leaf:
    """A small gc-tracked object of the large live heap."""


def make_live_heap(objects: int, per_list: int = 100) -> list[list[Leaf]]:
    """About ``objects`` gc-tracked objects kept alive: lists of ``per_list`` leaves."""
    return [[Leaf() for _ in range(per_list)] for _ in range(max(1, objects // (per_list + 1)))]
