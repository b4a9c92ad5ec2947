#!/usr/bin/env python3
"""Generate a QBFT consortium's Besu files: node keys, genesis, static nodes, node allowlist, deployer key.

Writes into ``consortium/generated/`` (git-ignored) by default:

    genesis.json              QBFT genesis; extraData names the validators, alloc funds the deployer
    static-nodes.json         enode URLs of every node (compose service names as hosts by default)
    permissions_config.toml   the node allowlist (Besu local node permissioning)
    registry-address          ConsortiumRegistry's address, predicted as CREATE(deployer, nonce 0)
    consortium.json           public summary: addresses, enodes, bootnodes, deployer, registry
    validatorN/key, rpc/key   secp256k1 node keys (0600); key.pub and address beside them
    deployer/key              the deployer's account key (0600); address beside it

Re-running keeps every existing key (so the genesis and the predicted address stay the same); ``--force``
replaces them, which means a new chain: remove the nodes' data volumes too.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import rlp
from eth_keys import keys
from eth_utils import keccak, to_canonical_address, to_checksum_address

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "consortium" / "generated"
DEFAULT_CHAIN_ID = 21021
DEFAULT_VALIDATORS = 4
MIN_VALIDATORS = 4  # QBFT tolerates f faulty validators out of 3f + 1: four is the smallest useful set
P2P_PORT = 30303
RPC_NODE = "rpc"
# Besu requires this mixHash in IBFT 2.0 / QBFT genesis blocks ("ctical byzantine fault tolerance").
BFT_MIX_HASH = "0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365"
FREE_GAS_BLOCK_GAS_LIMIT = "0x1fffffffffffff"
DEPLOYER_BALANCE_WEI = 10**9 * 10**18  # gas is free (zeroBaseFee, --min-gas-price=0); funded for other setups


@dataclass(frozen=True)
class Node:
    """A Besu node: its name (directory), p2p host, and secp256k1 node key."""

    name: str
    host: str
    private_key: keys.PrivateKey

    @property
    def public_key_hex(self) -> str:
        """The 64-byte uncompressed public key as 128 hex digits (the enode's node id)."""
        return self.private_key.public_key.to_hex()[2:]

    @property
    def address(self) -> str:
        """The node address (a validator address for validators), checksummed."""
        return str(self.private_key.public_key.to_checksum_address())

    def enode(self, port: int = P2P_PORT) -> str:
        """The node's enode URL."""
        return f"enode://{self.public_key_hex}@{self.host}:{port}"


@dataclass(frozen=True)
class Consortium:
    """Everything the generator produced (keys included), as written to the output directory."""

    out_dir: Path
    chain_id: int
    validators: list[Node]
    rpc_node: Node
    deployer: keys.PrivateKey
    p2p_port: int

    @property
    def nodes(self) -> list[Node]:
        """Validators first, then the RPC node."""
        return [*self.validators, self.rpc_node]

    @property
    def deployer_address(self) -> str:
        """The deployer account, checksummed."""
        return str(self.deployer.public_key.to_checksum_address())

    @property
    def registry_address(self) -> str:
        """ConsortiumRegistry's address: the deployer's first contract creation (nonce 0)."""
        return create_address(self.deployer_address, 0)


def create_address(sender: str, nonce: int) -> str:
    """The CREATE address of ``sender``'s transaction ``nonce``: keccak256(rlp([sender, nonce]))[12:]."""
    return to_checksum_address(keccak(rlp.encode([to_canonical_address(sender), nonce]))[12:])


def qbft_extra_data(validators: Sequence[str]) -> str:
    """Besu's QBFT genesis extraData: RLP([32-byte vanity, [validators], vote = [], round = 0, seals = []])."""
    vanity = bytes(32)
    encoded = rlp.encode([vanity, [to_canonical_address(v) for v in validators], [], 0, []])
    return "0x" + encoded.hex()


def genesis_document(
    chain_id: int,
    validators: Sequence[str],
    deployer: str,
    *,
    block_period_s: int = 2,
    epoch_length: int = 30_000,
    request_timeout_s: int = 4,
) -> dict[str, object]:
    """A QBFT genesis for a free-gas network (London rules, zero base fee) with the deployer funded."""
    return {
        "config": {
            "chainId": chain_id,
            "berlinBlock": 0,
            "londonBlock": 0,
            "zeroBaseFee": True,
            "qbft": {
                "blockperiodseconds": block_period_s,
                "epochlength": epoch_length,
                "requesttimeoutseconds": request_timeout_s,
            },
        },
        "nonce": "0x0",
        "timestamp": "0x0",
        "gasLimit": FREE_GAS_BLOCK_GAS_LIMIT,
        "difficulty": "0x1",
        "mixHash": BFT_MIX_HASH,
        "coinbase": "0x0000000000000000000000000000000000000000",
        "alloc": {to_canonical_address(deployer).hex(): {"balance": hex(DEPLOYER_BALANCE_WEI)}},
        "extraData": qbft_extra_data(validators),
    }


def permissions_config(enodes: Sequence[str]) -> str:
    """Besu's permissions_config.toml with the node allowlist (every node of the consortium)."""
    quoted = ",\n  ".join(json.dumps(enode) for enode in enodes)
    return (
        "# Besu local node permissioning: only these nodes may connect (generated by scripts/generate_consortium.py).\n"
        "# Adding an agency's node: append its enode here, then call perm_reloadPermissionsFromFile on every node.\n"
        f"nodes-allowlist=[\n  {quoted}\n]\n"
    )


def _write(path: Path, text: str, mode: int) -> None:
    """Write ``text`` atomically with exactly ``mode`` (whatever the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def _new_private_key() -> keys.PrivateKey:
    """A uniformly random valid secp256k1 private key."""
    while True:
        try:
            return keys.PrivateKey(secrets.token_bytes(32))
        except Exception:  # zero or ≥ the curve order: astronomically rare, draw again
            continue


def load_or_create_key(path: Path, *, force: bool = False) -> keys.PrivateKey:
    """The key in ``path`` (0x-hex, as Besu writes it); a new one when absent or ``force``."""
    if path.exists() and not force:
        text = path.read_text(encoding="utf-8").strip()
        try:
            key = keys.PrivateKey(bytes.fromhex(text.removeprefix("0x")))
        except Exception as exc:
            raise SystemExit(f"{path} does not hold a 32-byte hex key ({exc}); fix it or pass --force") from None
        os.chmod(path, 0o600)
        return key
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = _new_private_key()
    _write(path, key.to_hex(), 0o600)  # Besu's own format: 0x + 64 hex digits, no newline
    return key


def _write_node_files(node_dir: Path, key: keys.PrivateKey) -> None:
    """The public companions of a key: key.pub (node id) and address."""
    _write(node_dir / "key.pub", key.public_key.to_hex() + "\n", 0o644)
    _write(node_dir / "address", key.public_key.to_checksum_address() + "\n", 0o644)


def generate(
    out_dir: Path = DEFAULT_OUT,
    *,
    validators: int = DEFAULT_VALIDATORS,
    chain_id: int = DEFAULT_CHAIN_ID,
    validator_hosts: Sequence[str] | None = None,
    rpc_host: str = "besu-rpc",
    p2p_port: int = P2P_PORT,
    block_period_s: int = 2,
    epoch_length: int = 30_000,
    request_timeout_s: int = 4,
    force: bool = False,
) -> Consortium:
    """Create (or reuse) the keys and (re)write every derived file in ``out_dir``."""
    if validators < MIN_VALIDATORS:
        raise ValueError(f"QBFT needs at least {MIN_VALIDATORS} validators to tolerate a faulty one")
    hosts = list(validator_hosts or [f"besu-validator{i}" for i in range(1, validators + 1)])
    if len(hosts) != validators:
        raise ValueError(f"{validators} validators but {len(hosts)} validator hosts")
    out_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(out_dir, 0o755)  # the Besu containers (another uid) read the public files through a bind mount

    nodes = []
    for i, host in enumerate(hosts, 1):
        name = f"validator{i}"
        key = load_or_create_key(out_dir / name / "key", force=force)
        _write_node_files(out_dir / name, key)
        nodes.append(Node(name, host, key))
    rpc_key = load_or_create_key(out_dir / RPC_NODE / "key", force=force)
    _write_node_files(out_dir / RPC_NODE, rpc_key)
    deployer = load_or_create_key(out_dir / "deployer" / "key", force=force)
    _write(out_dir / "deployer" / "address", deployer.public_key.to_checksum_address() + "\n", 0o644)

    consortium = Consortium(out_dir, chain_id, nodes, Node(RPC_NODE, rpc_host, rpc_key), deployer, p2p_port)
    enodes = [node.enode(p2p_port) for node in consortium.nodes]
    genesis = genesis_document(
        chain_id,
        [node.address for node in consortium.validators],
        consortium.deployer_address,
        block_period_s=block_period_s,
        epoch_length=epoch_length,
        request_timeout_s=request_timeout_s,
    )
    _write(out_dir / "genesis.json", json.dumps(genesis, indent=2) + "\n", 0o644)
    _write(out_dir / "static-nodes.json", json.dumps(enodes, indent=2) + "\n", 0o644)
    _write(out_dir / "permissions_config.toml", permissions_config(enodes), 0o644)
    _write(out_dir / "registry-address", consortium.registry_address + "\n", 0o644)
    summary = {
        "chain_id": chain_id,
        "validators": [_node_summary(node, p2p_port) for node in consortium.validators],
        "rpc_node": _node_summary(consortium.rpc_node, p2p_port),
        "bootnodes": [node.enode(p2p_port) for node in consortium.validators],
        "static_nodes": enodes,
        "deployer": consortium.deployer_address,
        "registry_address": consortium.registry_address,
        "registry_address_derivation": "CREATE(deployer, nonce 0): the deployer's first transaction",
    }
    _write(out_dir / "consortium.json", json.dumps(summary, indent=2) + "\n", 0o644)
    return consortium


def _node_summary(node: Node, p2p_port: int) -> dict[str, str]:
    return {
        "name": node.name,
        "host": node.host,
        "address": node.address,
        "public_key": "0x" + node.public_key_hex,
        "enode": node.enode(p2p_port),
    }


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default: %(default)s)")
    parser.add_argument("--validators", type=int, default=DEFAULT_VALIDATORS, help="number of QBFT validators")
    parser.add_argument("--chain-id", type=int, default=DEFAULT_CHAIN_ID)
    parser.add_argument(
        "--validator-hosts",
        help="comma-separated p2p hosts of the validators, in order (default: besu-validator1..N, the compose names)",
    )
    parser.add_argument("--rpc-host", default="besu-rpc", help="p2p host of the RPC node (default: %(default)s)")
    parser.add_argument("--p2p-port", type=int, default=P2P_PORT)
    parser.add_argument("--block-period", type=int, default=2, help="QBFT blockperiodseconds")
    parser.add_argument("--epoch-length", type=int, default=30_000, help="QBFT epochlength (blocks)")
    parser.add_argument("--request-timeout", type=int, default=4, help="QBFT requesttimeoutseconds")
    parser.add_argument("--force", action="store_true", help="replace existing keys (a new chain)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    args = _parse_args(argv)
    hosts = [h.strip() for h in args.validator_hosts.split(",")] if args.validator_hosts else None
    try:
        consortium = generate(
            args.out,
            validators=args.validators,
            chain_id=args.chain_id,
            validator_hosts=hosts,
            rpc_host=args.rpc_host,
            p2p_port=args.p2p_port,
            block_period_s=args.block_period,
            epoch_length=args.epoch_length,
            request_timeout_s=args.request_timeout,
            force=args.force,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"consortium files in {consortium.out_dir} (chain id {consortium.chain_id})")
    for node in consortium.nodes:
        print(f"  {node.name:<11} {node.address}  {node.enode(consortium.p2p_port)}")
    print(f"  deployer    {consortium.deployer_address}")
    print(f"  ConsortiumRegistry will be created at {consortium.registry_address} (deployer nonce 0)")
    print("next: docker compose --profile consortium up -d consortium-service   (see docs/consortium.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
