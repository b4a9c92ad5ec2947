"""Service settings (environment variables ``TRACECHAIN_*``) and the chain deployment manifest."""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from eth_utils import is_address, to_checksum_address
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "DEPLOYMENT_FILENAME",
    "DeploymentError",
    "DeploymentInfo",
    "Settings",
    "get_settings",
    "read_deployment",
]

DEPLOYMENT_FILENAME = "deployment.json"
SQLITE_FILENAME = "service.db"


class Settings(BaseSettings):
    """Every environment variable of docs/interfaces.md plus the service's own tuning knobs."""

    model_config = SettingsConfigDict(env_prefix="TRACECHAIN_", extra="ignore", case_sensitive=True)

    DATA_DIR: Path = Path("./.tracechain")
    RPC_URL: str | None = None
    ANVIL_PORT: int = Field(default=8545, ge=1, le=65535)
    DEPLOYER_KEY: str | None = None
    DEPLOYER_KEYSTORE: Path | None = None
    DEPLOYER_KEYSTORE_PASSWORD: str | None = None
    HTTP_HOST: str = "127.0.0.1"
    HTTP_PORT: int = Field(default=8000, ge=1, le=65535)
    PUBLIC_URL: str = ""
    DATABASE_URL: str = ""
    CONFIRMATIONS: int = Field(default=0, ge=0)
    VERIFY_WARN_COUNT: int = Field(default=50, ge=1)
    VERIFY_FRESHNESS_S: float = Field(default=0.5, ge=0)
    """Max age of the revocation/recall/lot-link versions behind an answer from memory (0: read per request)."""
    VERIFY_COUNT_FLUSH_S: float = Field(default=1.0, gt=0)
    """How often the verification counters are written to the database."""
    TEST_DATABASE_URL: str | None = None

    INDEXER_POLL_INTERVAL_S: float = Field(default=0.5, gt=0)
    INDEXER_MAX_BACKOFF_S: float = Field(default=30.0, gt=0)
    INDEXER_CHUNK_BLOCKS: int = Field(default=2000, ge=1)
    MAX_BODY_BYTES: int = Field(default=32 * 1024 * 1024, ge=1024)

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        """Fill PUBLIC_URL and DATABASE_URL from the port and the data directory when unset."""
        if not self.PUBLIC_URL:
            self.PUBLIC_URL = f"http://127.0.0.1:{self.HTTP_PORT}"
        self.PUBLIC_URL = self.PUBLIC_URL.rstrip("/")
        if not self.DATABASE_URL:
            self.DATABASE_URL = f"sqlite:///{(self.DATA_DIR / SQLITE_FILENAME).resolve().as_posix()}"
        if self.INDEXER_MAX_BACKOFF_S < self.INDEXER_POLL_INTERVAL_S:
            self.INDEXER_MAX_BACKOFF_S = self.INDEXER_POLL_INTERVAL_S
        return self

    @property
    def deployment_path(self) -> Path:
        """Where chain_node writes ``deployment.json``."""
        return self.DATA_DIR / DEPLOYMENT_FILENAME


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()


class DeploymentError(RuntimeError):
    """``deployment.json`` is missing or malformed."""


def _checksum(value: str) -> str:
    if not is_address(value):
        raise ValueError(f"not an address: {value!r}")
    return to_checksum_address(value)


Address = Annotated[str, AfterValidator(_checksum)]


class DeploymentInfo(BaseModel):
    """The typed content of ``deployment.json`` (written by chain_node after deploying)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    chain_id: int
    rpc_url: str
    contracts: dict[str, Address]
    deployment_block: int = Field(ge=0)
    deployed_at: datetime | None = None

    @model_validator(mode="after")
    def _require_contracts(self) -> DeploymentInfo:
        """Both contracts the service follows must be present."""
        missing = {"ConsortiumRegistry", "TraceAnchor"} - set(self.contracts)
        if missing:
            raise ValueError(f"deployment lacks contract address(es): {', '.join(sorted(missing))}")
        return self

    @property
    def registry_address(self) -> str:
        """Checksummed address of ConsortiumRegistry."""
        return self.contracts["ConsortiumRegistry"]

    @property
    def anchor_address(self) -> str:
        """Checksummed address of TraceAnchor."""
        return self.contracts["TraceAnchor"]


def read_deployment(path: Path | str) -> DeploymentInfo:
    """Read ``deployment.json`` (or the data directory holding it) into a :class:`DeploymentInfo`."""
    path = Path(path)
    if path.is_dir():
        path = path / DEPLOYMENT_FILENAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DeploymentError(f"{path} not found: deploy the contracts first (chain_node)") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise DeploymentError(f"{path} is not readable JSON: {exc}") from exc
    try:
        return DeploymentInfo.model_validate(raw)
    except ValidationError as exc:
        raise DeploymentError(f"{path} is malformed: {exc}") from exc
