"""Background work of a service process: the chain follower thread and the verification versions refresher."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.exc import SQLAlchemyError

from certificate_service.context import ServiceContext
from certificate_service.indexer import ChainIndexer
from certificate_service.services.verification import refresh_versions

__all__ = ["start_indexer_thread", "start_version_refresher"]

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


def start_version_refresher(context: ServiceContext) -> threading.Thread | None:
    """Re-read the revocation/recall/lot-link versions twice per VERIFY_FRESHNESS_S in a daemon thread.

    Lookups answered from memory need versions at most that old; refreshing them here keeps requests from
    reading them themselves. Nothing to do when the freshness is 0 (every lookup reads them).
    """
    freshness = context.settings.VERIFY_FRESHNESS_S
    if freshness <= 0:
        return None

    def run() -> None:
        while not context.stop.wait(freshness / 2):
            try:
                refresh_versions(context)
            except SQLAlchemyError:
                log.warning("could not read the table versions; lookups read them until this recovers")

    thread = threading.Thread(target=run, name="verification-versions", daemon=True)
    thread.start()
    context.threads.append(thread)
    return thread
