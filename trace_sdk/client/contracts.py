"""Contract artifacts shipped in the SDK (``trace_sdk.artifacts``), web3 contract objects, role masks."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from importlib.resources import files
from typing import Any

from web3 import Web3
from web3.contract import Contract

__all__ = [
    "CONTRACT_NAMES",
    "ROLES",
    "contract_at",
    "load_artifact",
    "role_mask",
    "role_names",
]

ARTIFACTS_PACKAGE = "trace_sdk.artifacts"
CONTRACT_NAMES = ("ConsortiumRegistry", "TraceAnchor")
ROLES: dict[str, int] = {"MEMBER": 1, "REGULATOR": 2, "ISSUER": 4}


@cache
def load_artifact(name: str) -> dict[str, Any]:
    """The compiled artifact (abi, bytecode, deployedBytecode, ...) of ``name``; treat it as read-only."""
    if name not in CONTRACT_NAMES:
        raise ValueError(f"unknown contract {name!r}; expected one of {', '.join(CONTRACT_NAMES)}")
    text = files(ARTIFACTS_PACKAGE).joinpath(f"{name}.json").read_text(encoding="utf-8")
    artifact: dict[str, Any] = json.loads(text)
    return artifact


def contract_at(w3: Web3, name: str, address: str) -> Contract:
    """A web3 contract object for the deployed contract ``name`` at ``address``."""
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_artifact(name)["abi"])


def role_mask(roles: int | str | Iterable[str]) -> int:
    """A roles bitmask from a mask, a role name, a comma-separated string or a list of role names."""
    if isinstance(roles, bool):
        raise TypeError("roles must be a bitmask or role names, not a bool")
    if isinstance(roles, int):
        mask = roles
    else:
        names = roles.split(",") if isinstance(roles, str) else list(roles)
        mask = 0
        for raw in names:
            name = str(raw).strip().upper()
            if name not in ROLES:
                raise ValueError(f"unknown role {raw!r}; expected {', '.join(ROLES)}")
            mask |= ROLES[name]
    if not 0 < mask <= sum(ROLES.values()):
        raise ValueError(f"invalid roles bitmask {mask}: combine MEMBER=1, REGULATOR=2, ISSUER=4")
    return mask


def role_names(mask: int) -> list[str]:
    """The role names set in ``mask``, in MEMBER, REGULATOR, ISSUER order."""
    return [name for name, bit in ROLES.items() if mask & bit]
