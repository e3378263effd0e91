"""One typed settings object: config/defaults.toml < settings file < BACKORDERS_* environment."""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULTS_FILE = PROJECT_ROOT / "config" / "defaults.toml"

PriorityField = Literal["order_priority", "customer_tier", "placed_at", "order_value"]
# A DuckDB memory size such as 3GB or 512MiB: the one rule, used by the settings and by
# store.connect (which formats the value into a SET statement).
MEMORY_SIZE = r"\d+(\.\d+)?\s*[KMGT]i?B"


class InvalidSettings(ValueError):
    """A settings file or variable that cannot be read at all (one line, exit 2)."""


class _TomlSource(PydanticBaseSettingsSource):
    """Reads one TOML file; no path gives nothing, a named file must exist and parse."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        if path is None:
            return
        try:
            with path.open("rb") as fh:
                self._data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidSettings(f"settings file {path} is not valid TOML: {exc}") from None
        except OSError as exc:
            raise InvalidSettings(
                f"settings file {path} cannot be read: {exc.strerror or exc}"
                " (BACKORDERS_SETTINGS_FILE)"
            ) from None

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class Settings(BaseSettings):
    """Every knob of the pipeline, typed; see config/defaults.toml for the meaning of each."""

    model_config = SettingsConfigDict(env_prefix="BACKORDERS_", extra="forbid")

    db: Path = Path("data/backorders.duckdb")
    landing: Path = Path("data/landing")
    memory_limit: str = Field(default="3GB", pattern=rf"^{MEMORY_SIZE}$|^$")
    priority_key: list[PriorityField] = Field(
        default_factory=lambda: ["order_priority", "customer_tier", "placed_at", "order_value"]
    )
    tiers: list[str] = Field(default_factory=lambda: ["platinum", "gold", "silver", "standard"])
    handling_days: int = Field(default=1, ge=0)
    keep_committed: bool = True
    full_run_every_hours: float = Field(default=24.0, ge=0)
    min_inventory_accuracy: float = Field(default=0.95, ge=0.0, le=1.0)
    accuracy_tolerance_units: int = Field(default=0, ge=0)
    accuracy_tolerance_pct: float = Field(default=0.0, ge=0.0, le=1.0)
    max_eta_days: int = Field(default=730, gt=0)
    stock_min_row_ratio: float = Field(default=0.5, ge=0.0, le=1.0)
    # feed bounds and the accuracy gate's override (docs/feeds.md, docs/operations.md)
    max_future_days: int = Field(default=1, ge=0)
    earliest_date: date = date(2000, 1, 1)
    max_quantity: int = Field(default=1_000_000, gt=0)
    max_on_hand: int = Field(default=100_000_000, gt=0)
    max_unit_price: int = Field(default=1_000_000, gt=0)
    mart_failure_rows: int = Field(default=20, ge=1, le=1000)
    sendgrid_host: str = "https://api.sendgrid.com"
    sendgrid_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SENDGRID_API_KEY", "BACKORDERS_SENDGRID_API_KEY"),
        repr=False,
    )
    # a Prefect Secret block holding the key, read only when SENDGRID_API_KEY is not set
    sendgrid_secret_block: str = Field(default="", pattern=r"^$|^[a-z0-9][a-z0-9-]*$")
    from_email: str = ""
    from_name: str = "Customer Care"
    sandbox: bool = False
    send_timeout_s: float = Field(default=10.0, gt=0)
    send_max_attempts: int = Field(default=5, ge=1)
    send_batch_size: int = Field(default=500, ge=1, le=1000)
    send_concurrency: int = Field(default=16, ge=1, le=64)
    send_retry_budget: int = Field(default=20, ge=1)
    sendgrid_template_ids: dict[str, str] = Field(default_factory=dict)
    activity_lookup: bool = True
    activity_settle_s: float = Field(default=1800.0, ge=0)
    activity_keys_per_query: int = Field(default=50, ge=1, le=1000)
    activity_max_queries: int = Field(default=20, ge=1)
    writer_wait_s: float = Field(default=3600.0, ge=0)
    task_retries: int = Field(default=2, ge=0, le=10)
    task_retry_delay_s: float = Field(default=10.0, ge=0)
    delay_apology_days: int | None = Field(default=14, ge=0)
    discount_code: str = "SORRY-FOR-THE-WAIT"
    max_wait_days: int | None = Field(default=90, ge=0)
    # payments (docs/payments.md): captured when stock is there, through Stripe
    stripe_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("STRIPE_API_KEY", "BACKORDERS_STRIPE_API_KEY"),
        repr=False,
    )
    stripe_api_base: str = Field(default="https://api.stripe.com", pattern=r"^https?://\S+$")
    payments_multicapture: bool = False
    payment_authorization_days: int = Field(default=7, ge=1, le=31)
    payment_timeout_s: float = Field(default=20.0, gt=0)
    payment_max_attempts: int = Field(default=5, ge=1)
    payment_concurrency: int = Field(default=4, ge=1, le=32)
    payment_retry_budget: int = Field(default=20, ge=1)
    payment_lookup_after_h: float = Field(default=20.0, gt=0, le=24)
    # the clock the send pass judges an authorization's expiry by: the wall clock (Stripe's),
    # or the run's as-of plus the time since the stage began: `backorders demo` only, whose
    # fixed as-of and local Stripe server live in the past of the wall clock
    payment_clock: Literal["wall", "as_of"] = "wall"
    # Prefect operations (docs/operations.md, "Supplier delays: events and the automatic rerun")
    supplier_delay_window_s: int = Field(default=120, ge=1, le=86400)
    notification_block: str = ""
    # replenishment advice (docs/replenishment.md)
    replenish_window_days: int = Field(default=90, ge=7, le=730)
    replenish_service_level: float = Field(default=0.95, ge=0.5, le=0.9999)
    replenish_cover_days: int = Field(default=30, ge=0, le=365)
    replenish_keep_runs: int = Field(default=60, ge=1, le=100_000)

    @field_validator("priority_key")
    @classmethod
    def _no_repeats(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"priority_key lists a field twice: {v}")
        return v

    @field_validator("tiers")
    @classmethod
    def _tiers_non_empty(cls, v: list[str]) -> list[str]:
        if not v or len(set(v)) != len(v):
            raise ValueError("tiers must be a non-empty list of distinct names")
        return v

    @field_validator("sendgrid_template_ids")
    @classmethod
    def _template_ids(cls, v: dict[str, str]) -> dict[str, str]:
        from backorders.domain.email import validate_template_ids

        return validate_template_ids(v)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        import os

        user_file = os.environ.get("BACKORDERS_SETTINGS_FILE")
        return (
            init_settings,
            env_settings,
            _TomlSource(settings_cls, Path(user_file) if user_file else None),
            _TomlSource(settings_cls, DEFAULTS_FILE if DEFAULTS_FILE.exists() else None),
        )

    @property
    def sending_enabled(self) -> bool:
        """True when an API key (or a Secret block with it) is configured: emails are sent."""
        return self._key_from_env() is not None or bool(self.sendgrid_secret_block)

    def _key_from_env(self) -> str | None:
        key = self.sendgrid_api_key.get_secret_value() if self.sendgrid_api_key else ""
        return key or None

    def sendgrid_key(self) -> str:
        """The SendGrid key: SENDGRID_API_KEY, else the Prefect Secret block's value.

        Read only where the sender is built (pipeline.make_sender); never logged or kept.
        """
        key = self._key_from_env()
        if key is not None:
            return key
        if not self.sendgrid_secret_block:
            raise InvalidSettings("no SendGrid key: set SENDGRID_API_KEY or a Secret block")
        from prefect.blocks.system import Secret

        try:
            secret = Secret.load(self.sendgrid_secret_block)
        except ValueError as exc:  # Prefect: "Unable to find block document named ..."
            raise InvalidSettings(
                f"Prefect Secret block {self.sendgrid_secret_block!r} "
                f"(BACKORDERS_SENDGRID_SECRET_BLOCK) cannot be loaded: {exc}"
            ) from None
        value = secret.get()
        if not isinstance(value, str) or not value.strip():
            raise InvalidSettings(
                f"Prefect Secret block {self.sendgrid_secret_block!r} does not hold a key (a string)"
            )
        return value.strip()

    @property
    def payments_enabled(self) -> bool:
        """True when STRIPE_API_KEY is set: payment requests are sent, not only recorded."""
        return self.stripe_key() is not None

    def stripe_key(self) -> str | None:
        """The Stripe secret key (read only where the sender is built), or None."""
        key = self.stripe_api_key.get_secret_value() if self.stripe_api_key else ""
        return key or None

    def public_dict(self) -> dict[str, Any]:
        """Settings safe to log or show: the API keys are reduced to whether they are set."""
        d = self.model_dump(mode="json", exclude={"sendgrid_api_key", "stripe_api_key"})
        d["sendgrid_api_key"] = "set" if self.sending_enabled else "not set"
        d["stripe_api_key"] = "set" if self.payments_enabled else "not set"
        return d


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from defaults, the settings file, the environment and overrides."""
    from pydantic_settings import SettingsError

    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except SettingsError as exc:
        # pydantic-settings could not even parse a variable (a list or dict that is not
        # JSON): name the variable and the expected form instead of a traceback
        field = str(exc).split('"')[1] if '"' in str(exc) else "?"
        raise InvalidSettings(
            f"BACKORDERS_{field.upper()} cannot be read: a list or table setting is "
            f'written as JSON, e.g. \'["gold", "standard"]\' ({exc})'
        ) from None
