"""The demo consortium of Shanghai agencies: its members, their dev keys and `demo-consortium.json`."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from eth_account import Account

__all__ = [
    "DEMO_AGENCIES",
    "AgencyIdentity",
    "DemoAgency",
    "demo_consortium_document",
    "load_or_create_agency_keys",
    "write_private_json",
]


@dataclass(frozen=True)
class DemoAgency:
    """A member of the demo consortium as seeded on a fresh chain."""

    name: str
    code: str
    roles: tuple[str, ...]


# 上海市大数据中心 operates the certificate service (ISSUER); 市场监管局 is the regulator.
DEMO_AGENCIES: tuple[DemoAgency, ...] = (
    DemoAgency("上海市市场监督管理局", "SHSAMR", ("MEMBER", "REGULATOR")),
    DemoAgency("上海市农业农村委员会", "SHAGRI", ("MEMBER",)),
    DemoAgency("上海市商务委员会", "SHCOMM", ("MEMBER",)),
    DemoAgency("上海市教育委员会", "SHEDU", ("MEMBER",)),
    DemoAgency("上海市粮食和物资储备局", "SHGRAIN", ("MEMBER",)),
    DemoAgency("上海海关", "SHCUSTOMS", ("MEMBER",)),
    DemoAgency("上海市经济和信息化委员会", "SHEITC", ("MEMBER",)),
    DemoAgency("上海市大数据中心", "SHBDC", ("MEMBER", "ISSUER")),
)


@dataclass(frozen=True)
class AgencyIdentity:
    """A demo agency with its chain key (the shape of `demo-consortium.json`'s `agencies`)."""

    name: str
    code: str
    address: str
    private_key: str
    roles: list[str]

    def public(self) -> dict[str, object]:
        return {"name": self.name, "code": self.code, "address": self.address, "roles": self.roles}


def write_private_json(path: Path, data: object) -> None:
    """Write JSON readable by the owner only (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, indent=2)
        handle.write("\n")
    os.replace(tmp, path)


def load_or_create_agency_keys(path: Path) -> list[AgencyIdentity]:
    """The demo agencies' keys: generated once into the data dir, reused on every later start."""
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
    changed = False
    identities = []
    for agency in DEMO_AGENCIES:
        key = stored.get(agency.code)
        if key is None:
            key = "0x" + secrets.token_hex(32)
            stored[agency.code] = key
            changed = True
        identities.append(
            AgencyIdentity(
                name=agency.name,
                code=agency.code,
                address=Account.from_key(key).address,
                private_key=key,
                roles=list(agency.roles),
            )
        )
    if changed:
        write_private_json(path, stored)
    return identities


def demo_consortium_document(
    *,
    rpc_url: str,
    service_url: str,
    chain_id: int,
    contracts: dict[str, str],
    agencies: list[AgencyIdentity],
    funder_private_key: str,
) -> dict[str, object]:
    """`demo-consortium.json` with exactly the keys the foundation issue names."""
    return {
        "rpc_url": rpc_url,
        "service_url": service_url,
        "chain_id": chain_id,
        "contracts": contracts,
        "agencies": [asdict(agency) for agency in agencies],
        "funder_private_key": funder_private_key,
    }
