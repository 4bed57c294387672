"""The real CDNOW purchase log (1997-1998) as Segment messages, for `clm demo --dataset cdnow`.

Each customer of the file becomes `cdnow-<id>`: an `identify` on their first purchase day, then one
`Order Completed` per row in USD, at noon US Eastern time on the row's date. Provenance and
attribution: clm/demo/data/cdnow/README.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path

MASTER = Path(__file__).parent / "data" / "cdnow" / "CDNOW_master.txt"
_NOON_EASTERN = 17  # 12:00 in New York (EST, UTC-5) is 17:00 UTC


class CdnowFileError(ValueError):
    """The file is not the CDNOW master log."""


def read_rows(path: Path = MASTER) -> Iterator[tuple[str, datetime, int, str]]:
    """(customer id, purchase time, number of CDs, dollar value as written) for each row of the file."""
    with open(path, encoding="ascii") as fh:
        header = fh.readline().split()
        if header[:2] != ["customer_id", "date"]:
            raise CdnowFileError(f"{path}: expected the header 'customer_id date number_of_cds dollar_value'")
        for line_no, line in enumerate(fh, start=2):
            parts = line.split()
            if not parts:
                continue
            try:
                customer, day, cds, dollars = parts
                when = datetime.strptime(day, "%Y%m%d").replace(hour=_NOON_EASTERN, tzinfo=UTC)
                yield customer, when, int(cds), dollars
            except ValueError:
                raise CdnowFileError(f"{path}, line {line_no}: expected 4 columns: id, YYYYMMDD, CDs, dollars") from None


def stories(path: Path = MASTER, limit: int | None = None) -> Iterator[list[dict]]:
    """Each customer's messages (the file is sorted by customer), for the first `limit` customers."""
    for n, (customer, rows) in enumerate(groupby(read_rows(path), key=lambda r: r[0])):
        if limit is not None and n >= limit:
            return
        rows = list(rows)
        uid = f"cdnow-{customer}"
        ctx = {"library": {"name": "clm-demo", "version": "1"}, "locale": "en-US"}
        messages = [{"type": "identify", "userId": uid, "messageId": f"{uid}-identify", "timestamp": rows[0][1],
                     "traits": {"dataset": "cdnow", "cohort": "1997-Q1"}, "context": ctx}]
        for k, (_, when, cds, dollars) in enumerate(rows, start=1):
            props = {"order_id": f"{uid}-{k}", "total": float(dollars), "currency": "USD", "number_of_cds": cds}
            if cds > 0:
                props["products"] = [{"product_id": "cdnow-cd", "name": "CD", "quantity": cds}]
            messages.append({"type": "track", "userId": uid, "event": "Order Completed", "messageId": f"{uid}-order-{k}",
                             "timestamp": when, "properties": props, "context": ctx})
        yield messages
