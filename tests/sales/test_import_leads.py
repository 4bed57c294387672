"""`clm import leads`: rows become leads on the right customers; bad rows are reported; a re-import changes nothing."""

from __future__ import annotations

import sqlalchemy as sa
from typer.testing import CliRunner

from clm.imports.run import import_file
from clm.sales.models import Lead

CSV = """Mã lead,Họ tên,SĐT,Email,Nguồn,Ưu tiên,Người phụ trách,Chiến dịch,Ghi chú,Ngày tạo
L-1,Nguyễn Văn Bình,0912 333 444,,Giới thiệu,Rất cao,{owner},tet-2025,Cần 3 bộ bàn,01/03/2025
L-2,Trần Thị Cúc,,cuc@example.vn,,cao,,,,
L-3,Sai Số,12345,,,,,,,
L-4,Không Liên Lạc,,,,,,,,
L-5,Lê Ưu Tiên,0912333555,,,siêu gấp,,,,
"""


def write(tmp_path, owner: str) -> str:
    path = tmp_path / "leads.csv"
    path.write_text(CSV.format(owner=owner), encoding="utf-8")
    return str(path)


def test_leads_are_imported_onto_customers_and_bad_rows_are_reported(db, session_factory, settings, tmp_path, shop,
                                                                     seller):
    known = shop.customer("Bình", phone="0912333444")
    db.commit()
    outcome = import_file("leads", write(tmp_path, seller.email), session_factory, settings=settings)
    assert (outcome.summary.imported, outcome.summary.rejected) == (2, 3)
    report = outcome.report_path.read_text(encoding="utf-8")
    assert "\n4,SĐT," in report and "\n6,Ưu tiên," in report and "\n5," in report
    db.expire_all()
    leads = {lead.external_id: lead for lead in db.scalars(sa.select(Lead))}
    first = leads["L-1"]
    assert first.customer_id == known.id and first.source == "referral" and first.priority == "very_high"
    assert first.owner_id == seller.id and first.campaign == "tet-2025" and first.message == "Cần 3 bộ bàn"
    assert first.created_at.date().isoformat() in ("2025-02-28", "2025-03-01") and first.score is not None
    assert leads["L-2"].source == "import" and leads["L-2"].priority == "high"


def test_importing_the_same_file_again_changes_nothing(db, session_factory, settings, tmp_path, seller):
    path = write(tmp_path, seller.email)
    import_file("leads", path, session_factory, settings=settings)
    again = import_file("leads", path, session_factory, settings=settings)
    assert (again.summary.imported, again.summary.unchanged) == (0, 2)


def test_the_import_command_is_listed():
    from clm.cli import app

    result = CliRunner().invoke(app, ["import", "leads", "--help"])
    assert result.exit_code == 0 and "owner_email" in result.output
