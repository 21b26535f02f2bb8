"""tracker.events: an announcement made many times in one transaction reaches the after-commit listeners once
inside `coalesced()` (the demo records a patient's whole history in one transaction), and every time outside it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction

from tracker import events

pytestmark = pytest.mark.django_db

NAME = "test.something_changed"


@pytest.fixture
def heard() -> Iterator[dict[str, list[int]]]:
    calls: dict[str, list[int]] = {"in_transaction": [], "after_commit": []}

    @events.listen_in_transaction(NAME)
    def marking(*, patient_id: int) -> None:
        calls["in_transaction"].append(patient_id)

    @events.listen(NAME)
    def evaluating(*, patient_id: int) -> None:
        calls["after_commit"].append(patient_id)

    yield calls
    events._IN_TRANSACTION.pop(NAME)
    events._LISTENERS.pop(NAME)


def test_without_coalescing_each_announcement_runs_the_listeners(
    heard: dict[str, list[int]], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        for patient_id in (1, 1, 2, 1):
            events.announce_on_commit(NAME, patient_id=patient_id)
        assert heard["after_commit"] == []  # not before the commit

    assert heard == {"in_transaction": [1, 1, 2, 1], "after_commit": [1, 1, 2, 1]}


def test_coalesced_runs_the_after_commit_listeners_once_per_patient_in_first_announced_order(
    heard: dict[str, list[int]], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic(), events.coalesced():
        for patient_id in (2, 1, 2, 1, 2):
            events.announce_on_commit(NAME, patient_id=patient_id)
        assert heard["after_commit"] == []

    assert heard == {"in_transaction": [2, 1, 2, 1, 2], "after_commit": [2, 1]}


def test_a_coalesced_block_that_fails_hands_nothing_to_the_transaction(
    heard: dict[str, list[int]], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic(), events.coalesced():
            events.announce_on_commit(NAME, patient_id=1)
            raise RuntimeError("the write failed")

    assert callbacks == [] and heard["after_commit"] == []


def test_a_change_announced_after_a_rolled_back_savepoint_is_still_heard(
    heard: dict[str, list[int]], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic(), events.coalesced():
        try:
            with transaction.atomic():
                events.announce_on_commit(NAME, patient_id=1)
                raise RuntimeError("this part failed and was caught")
        except RuntimeError:
            pass
        events.announce_on_commit(NAME, patient_id=1)

    assert heard["after_commit"] == [1]
