"""Names people give segments and journeys (clm.db.names), on SQLite and PostgreSQL: trimmed, 1 to 120
characters, unique among their kind; a record keeps its own name when it changes."""

from __future__ import annotations

import pytest

from clm.journeys import service as journeys
from clm.lib.errors import FieldError
from clm.segments import service as segments

FLOW = {"trigger": {"type": "api"}, "start": "w", "nodes": [
    {"id": "w", "type": "wait", "duration": {"days": 1}, "next": "end"}, {"id": "end", "type": "exit"}]}
RULES = {"type": "profile", "field": "city", "op": "eq", "value": "Huế"}


def _segment(db, name, segment_id=None):
    return segments.save_segment(db, name=name, rules=RULES, segment_id=segment_id)


def _journey(db, name, journey_id=None):
    return journeys.save_journey(db, name=name, definition=FLOW, journey_id=journey_id)


@pytest.mark.parametrize(("save", "what"), [(_segment, "segment"), (_journey, "journey")])
def test_a_name_is_trimmed_unique_of_its_kind_and_kept_by_its_own_record(db, save, what):
    first = save(db, "  Khách Huế  ")
    db.commit()
    assert first.name == "Khách Huế"
    with pytest.raises(FieldError) as refused:
        save(db, "Khách Huế ")
    assert (refused.value.field, refused.value.code) == ("name", "duplicate")
    assert str(refused.value).endswith(f"a {what} named 'Khách Huế' already exists")
    db.rollback()
    assert save(db, "Khách Huế", first.id).id == first.id  # its own name is no clash
    other = save(db, "Khách Đà Nẵng")
    db.commit()
    with pytest.raises(FieldError, match="already exists"):
        save(db, "Khách Huế", other.id)
    db.rollback()
    for bad in ("", "   ", "x" * 121, "Huế\x00"):
        with pytest.raises(FieldError, match="must be 1 to 120 characters") as refused:
            save(db, bad)
        assert refused.value.field == "name"
        db.rollback()
    assert save(db, "x" * 120).name == "x" * 120


def test_a_segment_and_a_journey_may_share_a_name(db):
    _segment(db, "Khách mới")
    assert _journey(db, "Khách mới").name == "Khách mới"
