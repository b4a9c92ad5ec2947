"""Authenticate an enterprise by its Bearer API token (see certificate_service.enterprises)."""

from __future__ import annotations

import hmac

from sqlalchemy.orm import Session

from certificate_service.db.models import Enterprise
from certificate_service.enterprises import TOKEN_PREFIX, hash_token
from certificate_service.errors import Unauthorized
from certificate_service.repositories import enterprises as enterprise_repo

__all__ = ["authenticate_enterprise"]

_MAX_TOKEN_CHARS = 256


def authenticate_enterprise(*, session: Session, token: str | None) -> Enterprise:
    """The enterprise holding ``token``; 401 without a token or with one the service does not know."""
    if not token:
        raise Unauthorized("an enterprise API token is required: send 'Authorization: Bearer tc_…'")
    if not token.startswith(TOKEN_PREFIX) or len(token) > _MAX_TOKEN_CHARS:
        raise Unauthorized("the API token is not valid")
    digest = hash_token(token)
    enterprise = enterprise_repo.get_enterprise_by_token_sha256(session=session, token_sha256=digest)
    # The lookup is by hash (which leaks nothing about the token); the final comparison is constant-time.
    if enterprise is None or not hmac.compare_digest(enterprise.token_sha256.encode(), digest.encode()):
        raise Unauthorized("the API token is not valid")
    return enterprise
