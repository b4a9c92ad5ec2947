"""Typed dependencies the routes declare (FastAPI template style)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from certificate_service.context import ServiceContext

__all__ = ["ContextDep", "SessionDep"]


async def get_context(request: Request) -> ServiceContext:
    """The process's ServiceContext (async: no worker-thread hop just to read app state)."""
    return request.app.state.context  # type: ignore[no-any-return]


def get_session(context: Annotated[ServiceContext, Depends(get_context)]) -> Iterator[Session]:
    with context.sessions() as session:
        yield session


ContextDep = Annotated[ServiceContext, Depends(get_context)]
SessionDep = Annotated[Session, Depends(get_session)]
