"""testing.survivors: the pending-task checks the pytest plugin runs after every test."""

from __future__ import annotations

import asyncio

import pytest

from cyclescope.testing import survivors


async def _forever() -> None:
    await asyncio.Event().wait()


def test_no_task_alive_means_none_pending() -> None:
    asyncio.run(asyncio.sleep(0))  # asyncio imported and used; its tasks are all done
    assert survivors.may_have_pending_tasks() is False


def test_a_pending_task_is_seen_through_asyncios_registry_and_found_among_objects() -> None:
    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(_forever())
        loop.run_until_complete(asyncio.sleep(0))  # the loop stops; the task stays pending
        assert survivors.may_have_pending_tasks() is True
        found = survivors.pending_tasks([task, object()])
        assert [(t.coroutine, t.signature) for t in found] == [("_forever", "pending task _forever")]
        assert "test_survivors.py:" in found[0].location
        task.cancel()
        loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
        assert survivors.may_have_pending_tasks() is False, "a cancelled task is done"
        assert survivors.pending_tasks([task]) == []
    finally:
        loop.close()


def test_without_a_known_registry_the_check_says_maybe(monkeypatch: pytest.MonkeyPatch) -> None:
    # A Python whose asyncio keeps its tasks elsewhere: scan rather than miss a task.
    monkeypatch.setattr(survivors, "_found_registries", None)
    monkeypatch.setattr(survivors, "_task_registries", lambda: None)
    assert survivors.may_have_pending_tasks() is True
