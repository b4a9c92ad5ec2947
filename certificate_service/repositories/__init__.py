"""Repositories: keyword-only SQL helpers per table group (no web3, no HTTP, no business rules)."""

from certificate_service.repositories import anchors, certificates, chain, enterprises, members, records

__all__ = ["anchors", "certificates", "chain", "enterprises", "members", "records"]
