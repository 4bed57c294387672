"""`clm demo` end to end: a small shop in a fresh file, the login printed, old demos replaced."""

from __future__ import annotations

import sqlite3

from typer.testing import CliRunner

from clm.cli import app

runner = CliRunner()


def _demo(*args: str):
    return runner.invoke(app, ["demo", "--no-serve", *args])


def test_it_builds_a_small_shop_and_prints_the_login_and_keys(tmp_path):
    db = tmp_path / "shop.db"
    result = _demo("--customers", "200", "--db", str(db), "--password", "mat-khau-demo")
    assert result.exit_code == 0, result.output
    assert "200 customers" in result.output
    assert "admin@demo.clm.example.com" in result.output and "mat-khau-demo" in result.output
    assert "wk_" in result.output and "clm_" in result.output
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from customers").fetchone()[0] == 200
        roles = [r for (r,) in conn.execute("select role from users order by id")]
        assert roles[-1] == "admin" and roles.count("admin") == 1 and roles.count("sales") == 4  # the sales team
        assert conn.execute("select count(*) from customers where lifecycle_stage is null").fetchone()[0] == 0


def test_it_replaces_an_earlier_demo_but_refuses_another_file_unless_forced(tmp_path):
    db = tmp_path / "shop.db"
    assert _demo("--customers", "20", "--db", str(db)).exit_code == 0
    assert _demo("--customers", "30", "--db", str(db)).exit_code == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from customers").fetchone()[0] == 30

    precious = tmp_path / "clm.db"
    precious.write_bytes(b"the shop's real data")
    refused = _demo("--customers", "20", "--db", str(precious))
    assert refused.exit_code == 1
    assert "not made by `clm demo`" in refused.output and "--force" in refused.output
    assert precious.read_bytes() == b"the shop's real data"
    assert _demo("--customers", "20", "--db", str(precious), "--force").exit_code == 0
