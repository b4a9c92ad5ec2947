"""Enterprises that download their certificates: registration and API tokens (only their SHA-256 is stored).

The operator registers an enterprise by its 统一社会信用代码 (USCC) with ``tracechain enterprise add``; the
enterprise then presents the token as ``Authorization: Bearer tc_…`` to list and download the certificates
of the records that name its USCC.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from certificate_service.core.config import Settings
from certificate_service.db import create_db_engine, create_session_factory
from certificate_service.migrations import upgrade_database
from certificate_service.repositories import enterprises as enterprise_repo
from trace_sdk.protocol.identifiers import USCC_ALPHABET, is_valid_uscc, uscc_check_char

__all__ = [
    "TOKEN_PREFIX",
    "EnterpriseRegistrationError",
    "hash_token",
    "new_token",
    "register_enterprise",
    "register_enterprise_from_env",
]

TOKEN_PREFIX = "tc_"
_TOKEN_BYTES = 32
_MAX_NAME = 128


class EnterpriseRegistrationError(ValueError):
    """The enterprise cannot be registered (bad USCC or name, or the USCC is already registered)."""


def new_token() -> str:
    """A fresh API token: ``tc_`` + 32 random bytes, URL-safe base64."""
    return TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)


def hash_token(token: str) -> str:
    """The lowercase hex SHA-256 of a token (the only form the database keeps)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _checked_uscc(uscc: str) -> str:
    """The USCC in canonical (upper-case) form, or an error naming what is wrong with it."""
    code = uscc.strip().upper()
    if len(code) != 18:
        raise EnterpriseRegistrationError(
            f"USCC {uscc!r} must have 18 characters (统一社会信用代码为 18 位), got {len(code)}"
        )
    bad = sorted({c for c in code if c not in USCC_ALPHABET})
    if bad:
        raise EnterpriseRegistrationError(
            f"USCC {uscc!r} contains characters a USCC cannot hold: {', '.join(bad)} (no I, O, S, V, Z)"
        )
    if not is_valid_uscc(code):
        expected = uscc_check_char(code[:17])
        raise EnterpriseRegistrationError(
            f"USCC {uscc!r} has a wrong check character {code[17]!r}; GB 32100-2015 gives {expected!r} "
            "for its first 17 characters (校验码错误)"
        )
    return code


def _checked_name(name: str) -> str:
    """The trimmed enterprise name (1 to 128 characters)."""
    text = name.strip()
    if not text:
        raise EnterpriseRegistrationError("the enterprise name must not be empty")
    if len(text) > _MAX_NAME:
        raise EnterpriseRegistrationError(f"the enterprise name has {len(text)} characters (max {_MAX_NAME})")
    return text


def _duplicate(uscc: str, name: str) -> EnterpriseRegistrationError:
    return EnterpriseRegistrationError(
        f"an enterprise with USCC {uscc} is already registered ({name}); its token was shown once at "
        "registration and cannot be shown again"
    )


def register_enterprise(*, session: Session, uscc: str, name: str) -> str:
    """Register an enterprise and return its new API token (shown once; only its SHA-256 is stored)."""
    code = _checked_uscc(uscc)
    display_name = _checked_name(name)
    existing = enterprise_repo.get_enterprise(session=session, uscc=code)
    if existing is not None:
        raise _duplicate(code, existing.name)
    token = new_token()
    enterprise_repo.add_enterprise(
        session=session, uscc=code, name=display_name, token_sha256=hash_token(token)
    )
    try:
        session.commit()
    except IntegrityError:  # registered concurrently
        session.rollback()
        existing = enterprise_repo.get_enterprise(session=session, uscc=code)
        raise _duplicate(code, existing.name if existing else display_name) from None
    return token


def register_enterprise_from_env(*, uscc: str, name: str) -> str:
    """Register an enterprise in the database the environment names (TRACECHAIN_DATA_DIR / _DATABASE_URL)."""
    settings = Settings()
    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(settings.DATABASE_URL)
    try:
        upgrade_database(engine)
        with create_session_factory(engine)() as session:
            return register_enterprise(session=session, uscc=uscc, name=name)
    finally:
        engine.dispose()
