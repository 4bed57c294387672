"""Staff accounts: argon2 passwords, roles, and the guard that keeps one admin."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from clm.access import passwords
from clm.access.users import (
    ROLES,
    DuplicateEmail,
    authenticate,
    can,
    create_user,
    set_active,
    set_role,
)
from clm.lib.errors import FieldError

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))


def test_a_password_is_stored_as_an_argon2id_hash_never_in_clear(db):
    user = create_user(db, email="an@shop.vn", name="An", role="admin", password=PASSWORD)
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash


def test_emails_are_matched_without_regard_to_case_or_spaces(db):
    create_user(db, email="An@Shop.VN", name="An", role="sales", password=PASSWORD)
    assert authenticate(db, "  an@shop.vn ", PASSWORD) is not None
    with pytest.raises(DuplicateEmail) as raised:
        create_user(db, email="AN@shop.vn", name="An 2", role="sales", password=PASSWORD)
    assert raised.value.field == "email"


@pytest.mark.parametrize("fields,field", [
    ({"email": "not an email"}, "email"),
    ({"role": "boss"}, "role"),
    ({"password": "short"}, "password"),
    ({"locale": "fr"}, "locale"),
])
def test_bad_input_names_the_field(db, fields, field):
    values = {"email": "an@shop.vn", "name": "An", "role": "agent", "password": PASSWORD, **fields}
    with pytest.raises(FieldError) as raised:
        create_user(db, **values)
    assert raised.value.field == field


def test_authentication_refuses_wrong_passwords_unknown_emails_and_deactivated_users(db):
    user = create_user(db, email="an@shop.vn", name="An", role="admin", password=PASSWORD)
    create_user(db, email="boss@shop.vn", name="Boss", role="admin", password=PASSWORD)
    assert authenticate(db, "an@shop.vn", PASSWORD) is user
    assert authenticate(db, "an@shop.vn", PASSWORD + "!") is None
    assert authenticate(db, "nobody@shop.vn", PASSWORD) is None
    set_active(db, user.id, False)
    assert authenticate(db, "an@shop.vn", PASSWORD) is None


def test_a_hash_made_with_weaker_parameters_is_upgraded_at_the_next_login(db, monkeypatch):
    user = create_user(db, email="an@shop.vn", name="An", role="admin", password=PASSWORD)
    old = user.password_hash
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=2, memory_cost=128, parallelism=1))
    assert authenticate(db, "an@shop.vn", PASSWORD) is user
    assert user.password_hash != old and "t=2" in user.password_hash


def test_a_malformed_stored_hash_never_matches():
    assert passwords.verify_password("not-a-hash", "anything") is False
    assert passwords.verify_password(None, "anything") is False


def test_the_last_active_admin_keeps_their_role_and_their_access(db):
    admin = create_user(db, email="an@shop.vn", name="An", role="admin", password=PASSWORD)
    with pytest.raises(FieldError, match="last active admin"):
        set_role(db, admin.id, "agent")
    with pytest.raises(FieldError, match="last active admin"):
        set_active(db, admin.id, False)
    other = create_user(db, email="binh@shop.vn", name="Bình", role="admin", password=PASSWORD)
    set_role(db, admin.id, "agent")
    assert admin.role == "agent" and other.role == "admin"


def test_permissions_follow_the_role_and_a_deactivated_user_has_none(db):
    create_user(db, email="boss@shop.vn", name="Boss", role="admin", password=PASSWORD)
    users = {role: create_user(db, email=f"{role}@shop.vn", name=role, role=role, password=PASSWORD) for role in ROLES}
    assert [r for r in ROLES if can(users[r], "overview")] == ["admin", "manager", "marketer"]
    assert all(can(users[r], "customers") for r in ROLES)
    assert [r for r in ROLES if can(users[r], "settings:write")] == ["admin"]
    set_active(db, users["admin"].id, False)
    assert not can(users["admin"], "customers") and not can(None, "customers")
