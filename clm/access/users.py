"""Staff users: accounts, roles and what each role may do in the dashboard.

Roles are a fixed permission table (below), so who may do what is readable in one place and
tested route by route (tests/dashboard/test_access.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session

from clm.access.models import User
from clm.access.passwords import hash_password, needs_rehash, verify_password
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError, NotFound

ROLES = ("admin", "manager", "marketer", "sales", "agent")
LOCALES = ("vi", "en")
MIN_PASSWORD_LENGTH = 10

# overview: the KPI page; customers: list, search and customer 360; analytics: the CLV, RFM, cohort and
# model-fit pages; settings:read: see keys and users; settings:write: create and revoke keys, manage users;
# jobs: the job queue's page (counts, dead jobs, retry and cancel); channels: templates, messages, broadcasts
# and the channel settings page (which providers are set, test sends); journeys: the journeys' list, pages,
# builder and state buttons; loyalty: the program's reports, member lookup and pages (read); loyalty:manage:
# its settings, rules, tiers, rewards and manual point adjustments.
# sales: the pipeline board, leads, forecast (a sales rep's work); sales:manage: lead forms and assignment rules.
# service: the service desk's workspace (views, tickets, replies, notes, the customers' attachments), live updates
# and its reports; service:manage: the desk's settings in the dashboard (the web chat's sites).
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"overview", "customers", "analytics", "segments:read", "segments:write", "settings:read",
                        "settings:write", "jobs", "channels", "journeys", "loyalty", "loyalty:manage", "sales",
                        "sales:manage", "service", "service:manage"}),
    "manager": frozenset({"overview", "customers", "analytics", "segments:read", "segments:write", "settings:read",
                          "jobs", "channels", "journeys", "sales", "sales:manage", "loyalty", "loyalty:manage",
                          "service", "service:manage"}),
    "marketer": frozenset({"overview", "customers", "analytics", "segments:read", "segments:write", "channels",
                           "journeys", "loyalty"}),
    "sales": frozenset({"customers", "segments:read", "sales"}),
    "agent": frozenset({"customers", "service"}),
}


class DuplicateEmail(FieldError):
    def __init__(self, email: str):
        super().__init__("email", f"a user with the email {email} already exists", "duplicate")


def can(user: User | None, permission: str) -> bool:
    return user is not None and user.active and permission in PERMISSIONS.get(user.role, frozenset())


def home_of(user: User) -> str:
    """The first page a user may see after logging in."""
    return "/overview" if can(user, "overview") else "/customers"


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise FieldError("role", f"{role!r} is not a role; choose from {', '.join(ROLES)}")
    return role


def _check_locale(locale: str | None) -> str | None:
    if locale is not None and locale not in LOCALES:
        raise FieldError("locale", f"{locale!r} is not a language; choose from {', '.join(LOCALES)}")
    return locale


def normalize_email(email: str) -> str:
    try:
        return validate_email((email or "").strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise FieldError("email", str(exc)) from None


def check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise FieldError("password", f"must be at least {MIN_PASSWORD_LENGTH} characters long")
    return password


def find_user(session: Session, email: str) -> User | None:
    try:
        email = normalize_email(email)
    except FieldError:
        return None
    return session.scalar(sa.select(User).where(User.email == email))


def create_user(session: Session, *, email: str, name: str, role: str, password: str,
                locale: str | None = None) -> User:
    """Add an active user; FieldError names the field when the email, role or password won't do."""
    email = normalize_email(email)
    _check_role(role)
    _check_locale(locale)
    check_password(password)
    if session.scalar(sa.select(User.id).where(User.email == email)) is not None:
        raise DuplicateEmail(email)
    user = User(email=email, name=(name or "").strip() or email.split("@")[0], role=role, locale=locale,
                password_hash=hash_password(password), active=True, created_at=utcnow())
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with this email and password, or None (same time whether or not the email exists)."""
    user = find_user(session, email)
    if not verify_password(user.password_hash if user else None, password) or user is None or not user.active:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.flush()
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(sa.select(User).order_by(User.active.desc(), User.email)))


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user", user_id)
    return user


def _active_admins(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(User).where(User.role == "admin", User.active))


def set_role(session: Session, user_id: int, role: str) -> User:
    """Change a user's role; the last active admin keeps theirs, so someone can always manage access."""
    user = get_user(session, user_id)
    _check_role(role)
    if user.role == "admin" and role != "admin" and user.active and _active_admins(session) <= 1:
        raise FieldError("role", "this is the last active admin; make another admin first")
    user.role = role
    session.flush()
    return user


def set_active(session: Session, user_id: int, active: bool) -> User:
    """Deactivate (their sessions stop working at the next request) or reactivate a user."""
    user = get_user(session, user_id)
    if not active and user.role == "admin" and user.active and _active_admins(session) <= 1:
        raise FieldError("active", "this is the last active admin; make another admin first")
    user.active = active
    session.flush()
    return user


def set_locale(session: Session, user: User, locale: str) -> User:
    user.locale = _check_locale(locale)
    session.flush()
    return user
