"""Settings, read from ``TIERCARE_*`` environment variables.

The settings object is immutable and passed explicitly (to the app factory, the CLI commands,
the services); nothing in TierCare reads a mutable module-level setting.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "tiercare-development-secret-change-me"


class Settings(BaseSettings):
    """Effective configuration of one TierCare process."""

    model_config = SettingsConfigDict(env_prefix="TIERCARE_", frozen=True, extra="ignore")

    environment: str = Field(
        default="development",
        description="development | test | production. Production refuses the default secret key.",
    )
    database_url: str = Field(
        default="sqlite:///var/tiercare.db",
        description="SQLAlchemy URL. postgresql://… in production; a SQLite file by default.",
    )
    secret_key: str = Field(default=DEV_SECRET, description="Signs session cookies and tokens.")
    timezone: str = Field(default="Asia/Shanghai", description="Time zone for display.")
    default_language: str = Field(default="zh-CN", description="zh-CN or en.")
    session_hours: int = Field(default=12, ge=1, description="Lifetime of a login session.")
    token_hours: int = Field(default=24 * 30, ge=1, description="Lifetime of an API token.")
    out_dir: Path = Field(default=Path("out"), description="Where `tiercare demo` writes results.")

    @field_validator("database_url")
    @classmethod
    def _normalise_postgres(cls, value: str) -> str:
        """Accept SQLite and PostgreSQL URLs; use psycopg 3 for plain ``postgresql://``."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value[len("postgresql://"):]
        elif value.startswith("postgres://"):
            value = "postgresql+psycopg://" + value[len("postgres://"):]
        try:
            backend = make_url(value).get_backend_name()
        except ArgumentError as exc:
            raise ValueError(
                f"'{value}' is not a database URL (e.g. sqlite:///var/tiercare.db or "
                "postgresql://user@host:5432/dbname)") from exc
        if backend not in {"sqlite", "postgresql"}:
            raise ValueError(f"unsupported database '{backend}': TierCare runs on SQLite "
                             "(sqlite:///path.db) or PostgreSQL (postgresql://user@host/dbname)")
        return value

    @model_validator(mode="after")
    def _refuse_default_secret_in_production(self) -> Settings:
        if self.environment == "production" and self.secret_key == DEV_SECRET:
            raise ValueError("TIERCARE_SECRET_KEY must be set in production")
        return self

    def public_items(self) -> dict[str, str]:
        """Settings as strings with secrets masked, for `tiercare config`."""
        items: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            text = str(value)
            if name == "secret_key":
                text = "(default development key)" if value == DEV_SECRET else "****" + text[-4:]
            if name == "database_url" and "@" in text:
                scheme, rest = text.split("://", 1)
                creds, host = rest.rsplit("@", 1)
                text = f"{scheme}://{creds.split(':', 1)[0]}:****@{host}" if ":" in creds else text
            items[f"TIERCARE_{name.upper()}"] = text
        return items


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment (read once per process)."""
    return Settings()
