"""The chunk loop: a database error in a chunk costs only the bad unit; chunks keep orders whole."""

import sqlalchemy as sa

from clm.customers.models import Customer
from clm.imports.customers import CustomerImporter
from clm.imports.mapping import Mapping
from clm.imports.readers import Row, open_source
from clm.imports.service import chunks, run_import


class FailsOnBoom(CustomerImporter):
    """Writes like the customer importer, but the database refuses any chunk holding boom@x.vn."""

    def write(self, session, units):
        written = super().write(session, units)
        if any(u.data.profile.get("email") == "boom@x.vn" for u in units):
            session.execute(sa.text("SELECT * FROM no_such_table"))
        return written


def test_a_database_error_in_a_chunk_rejects_only_the_row_that_caused_it(write_csv, session_factory, db):
    path = write_csv([["email"], ["a@x.vn"], ["boom@x.vn"], ["c@x.vn"], ["d@x.vn"]])
    with open_source(path) as source:
        importer = FailsOnBoom(Mapping("customers").bind(source.columns))
        summary = run_import(importer, source, session_factory, chunk_size=3)
    assert (summary.imported, summary.rejected) == (3, 1)
    assert set(db.scalars(sa.select(Customer.email))) == {"a@x.vn", "c@x.vn", "d@x.vn"}


def test_a_chunk_never_ends_inside_a_run_of_rows_of_one_group():
    rows = [Row(i, {"order": g}) for i, g in enumerate("aabbbbc", start=2)]
    sizes = [[r.values["order"] for r in c] for c in chunks(iter(rows), 3, lambda r: r.values["order"])]
    assert sizes == [["a", "a", "b", "b", "b", "b"], ["c"]]
