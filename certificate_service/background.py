"""Background work of a service process: the chain follower thread."""

from __future__ import annotations

import logging
import threading

from certificate_service.context import ServiceContext
from certificate_service.db import create_session_factory
from certificate_service.indexer import ChainIndexer

__all__ = ["start_indexer_thread"]

log = logging.getLogger(__name__)


def start_indexer_thread(context: ServiceContext) -> threading.Thread:
    """Follow the chain in a daemon thread (only the process holding the indexer lock writes)."""
    # The follower only writes: its transactions start as writers (BEGIN IMMEDIATE on SQLite).
    writer_sessions = create_session_factory(context.engine.execution_options(sqlite_begin="IMMEDIATE"))
    indexer = ChainIndexer(
        writer_sessions,
        context.w3,
        context.deployment,
        confirmations=context.settings.CONFIRMATIONS,
    )
    thread = threading.Thread(target=indexer.run_forever, args=(context.stop,), name="chain-indexer", daemon=True)
    thread.start()
    context.threads.append(thread)
    return thread
