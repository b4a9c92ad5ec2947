"""Background work of a service process: the chain follower thread."""

from __future__ import annotations

import logging
import threading

from certificate_service.context import ServiceContext
from certificate_service.indexer import ChainIndexer

__all__ = ["start_indexer_thread"]

log = logging.getLogger(__name__)


def start_indexer_thread(context: ServiceContext) -> threading.Thread:
    """Follow the chain in a daemon thread (only the process holding the indexer lock writes)."""
    settings = context.settings
    indexer = ChainIndexer(
        context.sessions,
        context.w3,
        context.deployment,
        confirmations=settings.CONFIRMATIONS,
        chunk_blocks=settings.INDEXER_CHUNK_BLOCKS,
        poll_interval_s=settings.INDEXER_POLL_INTERVAL_S,
        max_backoff_s=settings.INDEXER_MAX_BACKOFF_S,
    )
    thread = threading.Thread(target=indexer.run_forever, args=(context.stop,), name="chain-indexer", daemon=True)
    thread.start()
    context.threads.append(thread)
    return thread
