"""watch(), check() and expect_freed(): three kinds of "not freed", never mixed up."""

from __future__ import annotations

import gc

import pytest

import cyclescope
from cyclescope.watching import CYCLE, RETAINED, UNCOLLECTABLE, NotFreedError, unwatch_all

pytestmark = pytest.mark.usefixtures("gc_state_kept")


class Response:
    def __init__(self) -> None:
        self.me: object = None


@pytest.fixture(autouse=True)
def empty_watch_list():
    yield
    unwatch_all()


def test_freed_by_reference_counting_is_not_reported() -> None:
    resp = Response()
    cyclescope.watch(resp, "closed")
    del resp
    report = cyclescope.check()
    assert not report and report.freed == 1


def test_retained_from_a_module_global_has_its_path(module) -> None:
    resp = Response()
    module.CACHE = {"k": resp}
    cyclescope.watch(resp, "closed response")
    del resp
    report = cyclescope.check()
    (finding,) = report.findings
    assert finding.kind == RETAINED and finding.reason == "closed response"
    assert finding.path == "module cs_test_module -> .CACHE -> ['k'] -> Response"
    assert "retained from a root" in str(report)


def test_freed_only_by_the_cyclic_collector_is_explained_as_a_cycle() -> None:
    gc.collect()
    gc.disable()  # so that check(), not an automatic collection, is the one that frees it
    try:
        resp = Response()
        resp.me = resp
        cyclescope.watch(resp)
        del resp
        report = cyclescope.check()
    finally:
        gc.enable()
    (finding,) = report.findings
    assert finding.kind == CYCLE
    assert finding.cycle is not None and ".me" in finding.cycle.signature


def test_freed_late_by_an_automatic_collection_is_still_a_cycle() -> None:
    resp = Response()
    resp.me = resp
    cyclescope.watch(resp)
    del resp
    gc.collect()  # stands for the automatic collector, before check()
    (finding,) = cyclescope.check().findings
    assert finding.kind == CYCLE and finding.cycle is None and "before check()" in finding.note


def test_held_from_c_is_uncollectable(held_from_c) -> None:
    resp = Response()
    held_from_c(resp)
    cyclescope.watch(resp)
    del resp
    (finding,) = cyclescope.check().findings
    assert finding.kind == UNCOLLECTABLE and "held from outside the heap" in finding.path


def test_an_object_without_weak_references_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="cannot watch a dict object: its type does not support weak references"):
        cyclescope.watch({})


def test_expect_freed_passes_and_fails(module) -> None:
    resp = Response()
    with cyclescope.expect_freed(resp):
        del resp
    kept = Response()
    module.KEPT = [kept]
    with pytest.raises(NotFreedError, match=r"module cs_test_module -> \.KEPT -> \[0\] -> Response"):
        with cyclescope.expect_freed(kept, reason="kept on purpose"):
            del kept
