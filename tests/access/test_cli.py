"""`clm users create` and `clm users list` on a temporary SQLite file."""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher
from typer.testing import CliRunner

from clm.access import passwords
from clm.cli import app
from clm.config import get_settings


@pytest.fixture
def cli(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/users.db"
    monkeypatch.setenv("CLM_DATABASE_URL", url)
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, ["users", *args], input=input, env={"CLM_DATABASE_URL": url})

    yield invoke
    get_settings.cache_clear()


def test_create_asks_for_the_password_twice_without_showing_it(cli):
    r = cli("create", "--email", "An@Shop.vn", "--name", "Nguyễn Văn An", "--role", "admin",
            input="correct horse battery\ncorrect horse battery\n")
    assert r.exit_code == 0, r.output
    assert "an@shop.vn (admin) created" in r.output and "correct horse battery" not in r.output
    listed = cli("list")
    assert "an@shop.vn" in listed.output and "Nguyễn Văn An" in listed.output and "admin" in listed.output


def flat(output: str) -> str:
    """Rich's error box, unwrapped into one line of words."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


def test_create_names_the_bad_option(cli):
    r = cli("create", "--email", "an@shop.vn", "--role", "boss", "--password", "correct horse battery")
    assert r.exit_code == 2 and "--role" in flat(r.output) and "admin, manager, marketer, sales, agent" in flat(r.output)
    r = cli("create", "--email", "an@shop.vn", "--role", "agent", "--password", "short")
    assert r.exit_code == 2 and "--password" in flat(r.output) and "at least 10 characters" in flat(r.output)


def test_a_second_user_with_the_same_email_is_refused(cli):
    assert cli("create", "--email", "an@shop.vn", "--role", "agent", "--password", "correct horse battery").exit_code == 0
    r = cli("create", "--email", "AN@shop.vn", "--role", "sales", "--password", "correct horse battery")
    assert r.exit_code == 2 and "already exists" in flat(r.output)


def test_list_says_how_to_add_the_first_user(cli):
    assert "clm users create" in cli("list").output
