"""The certificate service application (`uvicorn certificate_service.main:create_app --factory`)."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from web3 import Web3

from certificate_service.api.routes import certificates, ingest, pages, system, trace, verify
from certificate_service.api.verify_fast_lane import VerifyFastLane
from certificate_service.background import start_indexer_thread, start_version_refresher
from certificate_service.context import ServiceContext
from certificate_service.core.config import Settings, get_settings, read_deployment
from certificate_service.db import create_db_engine, create_session_factory
from certificate_service.errors import install_error_handlers
from certificate_service.limits import BodySizeLimit
from certificate_service.logging_setup import configure_logging
from certificate_service.migrations import upgrade_database
from certificate_service.pki import IssuerPKI
from certificate_service.services.deployment_stamp import ensure_deployment_stamp
from trace_sdk.verifier.chain_reader import ChainReader

__all__ = ["build_context", "create_app"]

log = logging.getLogger("certificate_service")


def _route_id(route: APIRoute) -> str:
    return f"{route.tags[0] if route.tags else 'api'}-{route.name}"


def build_context(settings: Settings) -> ServiceContext:
    """Migrate the database, read the deployment, load (or create) the issuer PKI."""
    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(settings.DATABASE_URL)
    upgrade_database(engine)
    deployment = read_deployment(settings.deployment_path)
    sessions = create_session_factory(engine)
    with sessions() as session:
        ensure_deployment_stamp(session=session, deployment=deployment)
    rpc_url = settings.RPC_URL or deployment.rpc_url
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 15}))
    return ServiceContext(
        settings=settings,
        engine=engine,
        sessions=sessions,
        deployment=deployment,
        w3=w3,
        pki=IssuerPKI.load_or_create(settings.DATA_DIR),
        chain=ChainReader(w3, deployment.registry_address, deployment.anchor_address),
    )


def create_app(settings: Settings | None = None, *, run_indexer: bool = True) -> FastAPI:
    """The FastAPI app; the chain indexer runs in a background thread unless ``run_indexer`` is False."""
    settings = settings or get_settings()
    configure_logging()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = build_context(settings)
        app.state.context = context
        if run_indexer:
            start_indexer_thread(context)
        context.verification_counter.start()
        start_version_refresher(context)
        # Everything loaded so far (modules, the app, the context) lives as long as the process: keep it out of
        # the collector's full scans, which otherwise stall every request of this worker for tens of ms.
        gc.collect()
        gc.freeze()
        # Background threads (indexer, counter flush, version refresher) hand the GIL back to the event loop
        # after 1 ms instead of 5: their work then adds less to a waiting request's latency.
        sys.setswitchinterval(0.001)
        log.info("certificate service up: chain %s, db %s", context.deployment.chain_id,
                 context.engine.url.render_as_string(hide_password=True))
        try:
            yield
        finally:
            context.close()

    app = FastAPI(
        title="TraceChain certificate service",
        summary="食品安全追溯信息区块链证书（上链凭证）: ingestion, certificates, verification",
        version="0.1.0",
        lifespan=lifespan,
        generate_unique_id_function=_route_id,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.MAX_BODY_BYTES)
    app.add_middleware(VerifyFastLane)  # added last = outermost of ours: warm lookups stop here
    install_error_handlers(app)
    app.include_router(system.router)
    app.include_router(ingest.router)
    app.include_router(certificates.router)
    app.include_router(verify.router)
    app.include_router(trace.router)
    app.include_router(pages.router)
    app.mount("/static", pages.static_files, name="static")
    return app
