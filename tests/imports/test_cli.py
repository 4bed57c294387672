"""`clm import` end to end on a temporary SQLite file: summary, exit codes, the error report."""

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from clm.cli import app
from clm.config import get_settings
from clm.db.engine import make_engine


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """cli(*args) -> result, with CLM_DATABASE_URL on a fresh SQLite file in tmp_path."""
    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("CLM_DATABASE_URL", url)
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, ["import", *map(str, args)], env={"CLM_DATABASE_URL": url})

    invoke.url = url
    yield invoke
    get_settings.cache_clear()


def scalar(url, sql):
    engine = make_engine(url)
    with engine.connect() as conn:
        value = conn.execute(sa.text(sql)).scalar()
    engine.dispose()
    return value


def test_it_imports_prints_a_summary_and_writes_the_rejected_rows_beside_the_file(cli, write_csv):
    path = write_csv([["E-mail", "Số ĐT"], ["an@x.vn", "0912345678"], ["oops", "0912345679"]], name="khach.csv")
    result = cli("customers", path, "--map", "email=E-mail", "--map", "phone=Số ĐT")
    assert result.exit_code == 0, result.output
    assert "2 rows read, 1 imported, 0 unchanged (already there), 1 rejected" in result.stdout
    assert "rows/s" in result.stdout
    report = (path.parent / "khach.errors.csv").read_text(encoding="utf-8-sig").splitlines()
    assert report[0] == "line,column,reason,E-mail,Số ĐT" and report[1].startswith("3,E-mail,")
    assert scalar(cli.url, "select count(*) from customers") == 1

    again = cli("customers", path, "--map", "email=E-mail", "--map", "phone=Số ĐT")
    assert "0 imported, 1 unchanged" in again.stdout


def test_the_error_report_goes_where_errors_says(cli, write_csv, tmp_path):
    path = write_csv([["order_id", "email", "placed_at", "total"], ["1", "a@x.vn", "2024-05-01", "10000"],
                      ["2", "a@x.vn", "never", "10000"]])
    result = cli("orders", path, "--errors", tmp_path / "reports" / "bad.csv")
    assert result.exit_code == 0, result.output
    assert "3,placed_at," in (tmp_path / "reports" / "bad.csv").read_text(encoding="utf-8-sig")


def test_it_exits_1_when_every_row_is_rejected(cli, write_jsonl):
    path = write_jsonl([{"event": "x", "timestamp": "2024-05-01"}])
    result = cli("events", path)
    assert result.exit_code == 1
    assert "every row of data.jsonl was rejected" in result.stderr


@pytest.mark.parametrize("name, args, message", [
    ("missing.csv", [], "no such file"),
    ("data.xlsx", [], "unsupported file type '.xlsx'; use .csv or .jsonl"),
    ("data.csv", ["--map", "email=Mail"], "unknown column 'Mail'"),
    ("data.csv", ["--map", "email"], "write it as our_field=Their Column"),
])
def test_it_exits_1_naming_the_problem_with_the_file_or_the_mapping(cli, tmp_path, name, args, message):
    (tmp_path / "data.csv").write_text("email\na@x.vn\n")
    (tmp_path / "data.xlsx").write_bytes(b"PK")
    result = cli("customers", tmp_path / name, *args)
    assert result.exit_code == 1
    assert message in " ".join(result.stderr.split())
