"""A small shop for the dashboard tests, made through the real ingestion pipeline.

Times are relative to `now`, so the overview's weekly charts (the last 12 weeks) have data in them.
Stages and stage history come from the lifecycle engine (clm.lifecycle.service.recompute).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.customers.models import Customer
from clm.lifecycle.service import recompute
from clm.tracking.ingest import ingest

# (user id, name, email, phone, city, days ago first seen, [(days ago, order total VND, item)])
PEOPLE = [
    ("u-an", "Nguyễn Văn An", "an.nguyen@example.vn", "0912345678", "Hà Nội", 70,
     [(60, 1_250_000, "Áo dài lụa"), (30, 480_000, "Khăn lụa"), (3, 890_000, "Nón lá thêu")]),
    ("u-bich", "Trần Thị Bích", "bich.tran@example.vn", "0987654321", "TP Hồ Chí Minh", 50,
     [(45, 320_000, "Trà sen"), (10, 640_000, "Trà sen hộp quà")]),
    ("u-cuong", "Lê Văn Cường", "cuong.le@example.vn", "0901112233", "Đà Nẵng", 20,
     [(15, 2_150_000, "Gốm Bát Tràng")]),
    ("u-dung", "Phạm Thị Dung", "dung.pham@example.vn", "0934556677", "Hà Nội", 12, []),
    ("u-em", "Hoàng Minh Em", "em.hoang@example.vn", "0977889900", "Huế", 5, []),
    ("u-giang", "Vũ Thu Giang", "giang.vu@example.vn", "0966112244", "Cần Thơ", 80,
     [(75, 990_000, "Cà phê chồn")]),
]


@dataclass
class SeededShop:
    ids: dict[str, int]

    def id_of(self, user_id: str) -> int:
        return self.ids[user_id]


def seed_shop(db: Session, now: datetime) -> SeededShop:
    ids: dict[str, int] = {}
    seq = 0
    for user_id, name, email, phone, city, first_days, orders in PEOPLE:
        first = now - timedelta(days=first_days)
        seq += 1
        messages = [{"type": "identify", "userId": user_id, "messageId": f"seed-{seq}", "timestamp": first.isoformat(),
                     "traits": {"name": name, "email": email, "phone": phone, "city": city}},
                    {"type": "page", "userId": user_id, "messageId": f"seed-{seq}-p", "name": "Trang chủ",
                     "timestamp": (first + timedelta(minutes=2)).isoformat(), "properties": {"path": "/"}}]
        for days, total, item in orders:
            seq += 1
            messages.append({"type": "track", "userId": user_id, "event": "Order Completed", "messageId": f"seed-{seq}",
                             "timestamp": (now - timedelta(days=days)).isoformat(),
                             "properties": {"order_id": f"DH-{seq:04d}", "total": total, "currency": "VND",
                                            "products": [{"product_id": f"sku-{seq}", "name": item, "price": total,
                                                          "quantity": 1}]}})
        result = ingest(db, messages, received_at=now)
        assert not result.rejected, result.rejected
        [ids[user_id]] = result.customer_ids
        db.execute(sa.update(Customer).where(Customer.id == ids[user_id]).values(created_at=first))
    recompute(db, now)
    db.commit()
    return SeededShop(ids)
