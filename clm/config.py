"""Settings from CLM_* environment variables (and a .env file). Nothing else reads the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting clm reads; each is documented in docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="CLM_", env_file=".env", extra="ignore")

    database_url: str = Field(
        "sqlite:///clm.db",
        description="SQLAlchemy URL. sqlite:///clm.db by default; postgresql+psycopg://... in production.",
    )
    timezone: str = Field("Asia/Ho_Chi_Minh", description="The business time zone for reports and birthdays.")
    default_currency: str = Field("VND", description="ISO 4217 code used when an order names none.")
    default_region: str = Field("VN", description="Region used to read phone numbers written without +country.")
    host: str = Field("127.0.0.1", description="Address `clm serve` listens on.")
    port: int = Field(8000, description="Port `clm serve` listens on.")
    workers: int = Field(1, description="Processes `clm serve` runs (each with its own group-commit writer).")
    secret_key: SecretStr = Field(
        SecretStr("dev-insecure-change-me"),
        description="Signs session cookies and CSRF tokens. Set a long random value in production.",
    )
    session_cookie_secure: bool = Field(
        False, description="Send the dashboard session cookie over HTTPS only. Set true behind TLS."
    )
    session_max_age: int = Field(14 * 24 * 3600, description="Seconds a dashboard login lasts.")
    dashboard_warm_up: bool = Field(
        True, description="Compute the overview's figures in the background when the server starts."
    )
    max_event_bytes: int = Field(32 * 1024, description="Largest accepted tracking event (Segment: 32 KB).")
    max_batch_bytes: int = Field(500 * 1024, description="Largest accepted tracking batch (Segment: 500 KB).")
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")
    lifecycle_rules: Path | None = Field(
        None, description="The business's lifecycle rule file (TOML); the built-in stage model when unset."
    )
    worker_poll_seconds: float = Field(1.0, gt=0, description="How often an idle worker looks for new facts.")
    lifecycle_sweep_minutes: int = Field(
        60, ge=1, description="How often the worker moves customers whom time alone moves (at risk, churned)."
    )


def _read_secret_files(values: dict) -> dict:
    """`CLM_<NAME>_FILE=/run/secrets/x` reads a secret from a file (Docker/Kubernetes secrets)."""
    import os

    for name, field in Settings.model_fields.items():
        if field.annotation is SecretStr or "SecretStr" in str(field.annotation):
            path = os.environ.get(f"CLM_{name.upper()}_FILE")
            if path and f"CLM_{name.upper()}" not in os.environ:
                values[name] = Path(path).read_text().strip()
    return values


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting: the source of docs/configuration.md."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, SecretStr):
            default = "(set one in production)"
        rows.append((f"CLM_{name.upper()}", "" if default is None else str(default), field.description or ""))
    return rows


@lru_cache
def get_settings() -> Settings:
    return Settings(**_read_secret_files({}))
