"""Chain indexer: follows ConsortiumRegistry and TraceAnchor into the service database."""

from certificate_service.indexer.follower import (
    ChainDataError,
    ChainIndexer,
    ChainUnavailableError,
    IndexerError,
    load_event_abis,
    make_writer_lock,
)

__all__ = [
    "ChainDataError",
    "ChainIndexer",
    "ChainUnavailableError",
    "IndexerError",
    "load_event_abis",
    "make_writer_lock",
]
