"""The nps_survey action: the NPS question through the channels' outbox with a signed answer link, once per step."""

from __future__ import annotations

import sqlalchemy as sa

from clm.channels.models import Message
from clm.journeys import service
from clm.service.desk_models import Survey
from clm.service.satisfaction import answer, report
from tests.journeys.conftest import END, graph, run_of


def test_a_journey_asks_nps_once_per_customer_and_the_answer_is_reported(db, clock, people, drain, live):
    anna, binh = people(2, email="khach@example.vn")
    journey = live(graph({"id": "ask", "type": "nps_survey", "next": "end"}, END))
    for who in (anna, binh):
        service.trigger(db, journey, who, None, {})
    db.commit()
    drain()
    drain()  # nothing more to do: one survey each
    surveys = {s.customer_id: s for s in db.scalars(sa.select(Survey))}
    assert set(surveys) == {anna, binh} and {s.kind for s in surveys.values()} == {"nps"}
    message = db.get(Message, surveys[anna].message_id)
    assert message.channel == "email" and message.template_key == "service.nps.email" and "/s/" in message.text
    assert run_of(db, journey, anna).status == "completed"
    answer(db, surveys[anna].id, 10, now=clock.now)
    answer(db, surveys[binh].id, 3, now=clock.now)
    [row] = report(db, kind="nps", by="channel")
    assert (row.key, row.answered, row.promoters, row.detractors, row.satisfied) == ("email", 2, 1, 1, 0.0)
