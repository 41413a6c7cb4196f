"""Memory records: remember, support, contradict, decay, forget, and who may change what."""

from __future__ import annotations

from datetime import timedelta

import pytest

from nanoresearch.errors import UserError
from nanoresearch.knowledge.memory import CONTRADICTION_FACTOR, Memory, decayed_importance
from nanoresearch.store.knowledge_models import IMPORTANCE_HALF_LIFE_DAYS, Conditions, Evidence, MemoryRecord, utcnow


def failed(text: str = "dropout 0.5 on the digits MLP lowered accuracy", **fields) -> MemoryRecord:
    return MemoryRecord(type="failed_hypothesis", text=text, **fields)


def test_remember_and_read_back_every_field(memory: Memory, store) -> None:
    project = store.ensure_project(memory.user_id, "digits")
    record = memory.remember(failed(
        project_id=project, importance=0.9, confidence=0.8, tags=["Regularisation"], stages=["ideation"],
        conditions=Conditions(dataset="digits", method="MLP", budget="trials=6", failure_mode="underfitting"),
        evidence=[Evidence(run_id="run-1", trial_id=4), Evidence(paper="srivastava2014dropout")]))
    assert record.id > 0 and record.user_id == memory.user_id
    again = memory.get(record.id)
    assert again == record
    assert again.conditions.dataset == "digits" and again.evidence[1].paper == "srivastava2014dropout"
    assert again.tags == ["regularisation"]
    assert memory.list() == [record] and memory.list(types=["result"]) == []


def test_the_same_record_twice_is_support_not_a_twin(memory: Memory) -> None:
    first = memory.remember(failed(confidence=0.5))
    second = memory.remember(failed(confidence=0.5))
    assert second.id == first.id and second.support == 1
    assert second.confidence == pytest.approx(0.5 + 0.5 * 0.2)
    assert len(memory.list()) == 1
    other_type = memory.remember(MemoryRecord(type="lesson", text=first.text))
    assert other_type.id != first.id


def test_support_raises_confidence_and_restarts_decay(memory: Memory, store) -> None:
    record = memory.remember(failed(confidence=0.6))
    supported = memory.support(record.id)
    assert (supported.support, supported.confidence) == (1, pytest.approx(0.68))
    assert supported.reinforced >= record.reinforced


def test_importance_halves_at_the_types_half_life(memory: Memory) -> None:
    record = memory.remember(failed(importance=0.8))
    half_life = IMPORTANCE_HALF_LIFE_DAYS["failed_hypothesis"]
    now = record.reinforced
    assert decayed_importance(record, now) == pytest.approx(0.8)
    assert decayed_importance(record, now + timedelta(days=half_life)) == pytest.approx(0.4)
    assert decayed_importance(record, now + timedelta(days=2 * half_life)) == pytest.approx(0.2)
    assert decayed_importance(record, now - timedelta(days=3)) == pytest.approx(0.8)  # no growth before it was written
    preference = MemoryRecord(type="preference", text="x", importance=0.8, reinforced=now)
    later = now + timedelta(days=half_life)
    assert decayed_importance(preference, later) > 1.4 * decayed_importance(record, later)  # preferences fade slower


def test_decay_lowers_an_old_records_rank(memory: Memory, store) -> None:
    old = memory.remember(failed("label smoothing 0.2 hurt the small MLP", importance=0.9,
                                 reinforced=utcnow() - timedelta(days=720)))
    new = memory.remember(failed("label smoothing 0.1 hurt the small MLP", importance=0.9))
    hits = memory.search("label smoothing hurt the small MLP")
    assert [h.item.id for h in hits] == [new.id, old.id]
    assert hits[1].components["importance"] < 0.1 * hits[0].components["importance"]


def test_contradiction_lowers_the_old_confidence_and_links_both(memory: Memory) -> None:
    old = memory.remember(MemoryRecord(type="result", text="batch size 256 trains as well as 64 on digits", confidence=0.8))
    old_after, new = memory.contradict(old.id, MemoryRecord(type="result", text="batch size 256 loses 2 points on digits"))
    assert old_after.confidence == pytest.approx(0.8 * CONTRADICTION_FACTOR)
    assert (old_after.contradicts, new.contradicts) == ([new.id], [old.id])
    assert (old_after.contradictions, new.contradictions) == (1, 1)
    assert new.confidence == pytest.approx(0.7)  # the newer result keeps its own confidence
    hits = {h.item.id: h for h in memory.search("batch size 256 on digits")}
    assert hits[new.id].components["importance"] > hits[old.id].components["importance"]
    with pytest.raises(UserError, match="cannot contradict itself"):
        memory.contradict(old.id, old.id)


def test_forget_removes_the_record_and_its_links(memory: Memory) -> None:
    old = memory.remember(MemoryRecord(type="result", text="a"))
    _, new = memory.contradict(old.id, MemoryRecord(type="result", text="b"))
    assert memory.forget(old.id).id == old.id
    assert memory.get(new.id).contradicts == []
    assert [h.item.id for h in memory.search("a b")] == [new.id]
    with pytest.raises(UserError, match=f"no memory record {old.id}"):
        memory.get(old.id)


def test_project_scope(memory: Memory, store) -> None:
    digits = store.ensure_project(memory.user_id, "digits")
    speech = store.ensure_project(memory.user_id, "speech")
    general = memory.remember(MemoryRecord(type="preference", text="always report three seeds"))
    on_digits = memory.remember(failed("dropout hurt on digits", project_id=digits))
    memory.remember(failed("dropout hurt on speech", project_id=speech))
    assert {h.item.id for h in memory.search("dropout seeds", project_id=digits)} == {general.id, on_digits.id}
    assert {r.id for r in memory.list(project_id=digits)} == {general.id, on_digits.id}
    assert [h.item.id for h in memory.search("dropout", project_id=digits, types=("failed_hypothesis",))] == [on_digits.id]
    bob = store.ensure_user("bob")
    with pytest.raises(UserError, match="not one of yours"):
        memory.remember(failed(project_id=store.ensure_project(bob, "bobs")))


def test_only_the_owner_changes_a_record(memory: Memory, store, embedder) -> None:
    shared = memory.remember(MemoryRecord(type="lesson", text="cache the dataset in RAM", visibility="shared"))
    private = memory.remember(MemoryRecord(type="lesson", text="my private lesson"))
    bob = Memory(store, store.ensure_user("bob"), embedder=embedder)
    assert bob.get(shared.id).text == "cache the dataset in RAM"
    with pytest.raises(UserError, match=f"no memory record {private.id}"):
        bob.get(private.id)
    for change in (bob.forget, bob.support):
        with pytest.raises(UserError, match="only its owner can change it"):
            change(shared.id)
    with pytest.raises(UserError, match="only its owner"):
        bob.contradict(shared.id, MemoryRecord(type="lesson", text="no"))
    with pytest.raises(UserError, match="written by the user it belongs to"):
        bob.remember(MemoryRecord(user_id=memory.user_id, type="lesson", text="forged"))


def test_a_link_never_shows_another_users_private_record(memory: Memory, store, embedder) -> None:
    shared = memory.remember(MemoryRecord(type="result", text="mixup helps", visibility="shared"))
    _, private = memory.contradict(shared.id, MemoryRecord(type="result", text="mixup did not help here"))
    assert memory.get(shared.id).contradicts == [private.id]
    bob = Memory(store, store.ensure_user("bob"), embedder=embedder)
    assert bob.get(shared.id).contradicts == []


def test_bad_records_are_refused() -> None:
    with pytest.raises(ValueError, match="text is empty"):
        MemoryRecord(type="lesson", text="   ")
    with pytest.raises(ValueError):
        MemoryRecord(type="rumour", text="x")
    with pytest.raises(ValueError):
        MemoryRecord(type="lesson", text="x", importance=1.5)
