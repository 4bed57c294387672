import itertools
from datetime import UTC, datetime

import pytest

from clm.customers.models import Customer
from clm.loyalty.program import ProgramSettings, save_program

T0 = datetime(2025, 1, 6, 3, 0, tzinfo=UTC)
_seq = itertools.count(1)


def make_customer(db, **fields) -> Customer:
    customer = Customer(full_name=fields.pop("full_name", f"Khách {next(_seq)}"), search_text="", traits={},
                        created_at=T0, updated_at=T0, **fields)
    db.add(customer)
    db.flush()
    return customer


@pytest.fixture
def program(db):
    program = save_program(db, ProgramSettings(pending_days=7, expiry="months", expiry_months=2, point_value=1000))
    db.flush()
    return program
