"""scripts/generate_consortium.py: keys, QBFT genesis, enodes, allowlist, predicted registry address."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import rlp
from eth_keys import keys
from eth_utils import keccak, to_canonical_address, to_checksum_address

from tests.deploy.helpers import GENERATOR

PUBLIC_FILES = ("genesis.json", "static-nodes.json", "permissions_config.toml", "registry-address", "consortium.json")


def _key(path: Path) -> keys.PrivateKey:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("0x") and len(text.strip()) == 66, "Besu's key format: 0x + 64 hex digits"
    return keys.PrivateKey(bytes.fromhex(text.strip()[2:]))


def _create_address(sender: str, nonce: int) -> str:
    """Yellow paper CREATE address, computed here independently of the code under test."""
    return to_checksum_address(keccak(rlp.encode([to_canonical_address(sender), nonce]))[-20:])


def _genesis(out: Path) -> dict[str, Any]:
    return json.loads((out / "genesis.json").read_text(encoding="utf-8"))


def _summary(out: Path) -> dict[str, Any]:
    return json.loads((out / "consortium.json").read_text(encoding="utf-8"))


def _validator_dirs(out: Path) -> list[Path]:
    return sorted(out.glob("validator*"), key=lambda p: int(p.name.removeprefix("validator")))


def test_extra_data_decodes_to_exactly_the_generated_validators(generated_consortium: Any) -> None:
    genesis = _genesis(generated_consortium.out_dir)
    decoded = rlp.decode(bytes.fromhex(genesis["extraData"].removeprefix("0x")))
    assert len(decoded) == 5, "QBFT extraData: [vanity, validators, vote, round, seals]"
    vanity, validators, vote, round_, seals = decoded
    assert vanity == bytes(32)
    expected = [to_canonical_address(_key(d / "key").public_key.to_checksum_address())
                for d in _validator_dirs(generated_consortium.out_dir)]
    assert list(validators) == expected
    assert list(vote) == [] and list(seals) == []
    assert round_ == b"", "round 0 is RLP's empty byte string (0x80), as Besu's QBFT codec writes it"
    assert genesis["extraData"].endswith("c080c0")


def test_at_least_four_validators_and_one_rpc_node(generated_consortium: Any) -> None:
    assert len(_validator_dirs(generated_consortium.out_dir)) >= 4
    assert len(generated_consortium.validators) >= 4
    assert (generated_consortium.out_dir / "rpc" / "key").is_file()


def test_each_key_matches_its_address_public_key_and_enode(generated_consortium: Any) -> None:
    out = generated_consortium.out_dir
    summary = _summary(out)
    entries = {e["name"]: e for e in [*summary["validators"], summary["rpc_node"]]}
    for node_dir in [*_validator_dirs(out), out / "rpc"]:
        key = _key(node_dir / "key")
        address = key.public_key.to_checksum_address()
        assert (node_dir / "address").read_text().strip() == address
        assert (node_dir / "key.pub").read_text().strip() == key.public_key.to_hex()
        entry = entries[node_dir.name]
        assert entry["address"] == address
        assert entry["enode"].startswith(f"enode://{key.public_key.to_hex()[2:]}@")
    deployer = _key(out / "deployer" / "key")
    assert (out / "deployer" / "address").read_text().strip() == deployer.public_key.to_checksum_address()
    assert summary["deployer"] == deployer.public_key.to_checksum_address()


def test_predicted_registry_address_is_the_deployers_first_create(
    generated_consortium: Any, generator: ModuleType
) -> None:
    out = generated_consortium.out_dir
    deployer = _key(out / "deployer" / "key").public_key.to_checksum_address()
    predicted = (out / "registry-address").read_text().strip()
    assert predicted == _create_address(deployer, 0)
    assert _summary(out)["registry_address"] == predicted
    # Known vector: Anvil's dev account #0 creates its first contract at 0x5FbDB…0aa3.
    assert generator.create_address("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", 0) == (
        "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    )
    assert generator.create_address("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", 1) == (
        "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
    )


def test_genesis_is_a_free_gas_qbft_genesis_funding_the_deployer(generated_consortium: Any) -> None:
    genesis = _genesis(generated_consortium.out_dir)
    config = genesis["config"]
    assert set(config["qbft"]) == {"blockperiodseconds", "epochlength", "requesttimeoutseconds"}
    assert config["qbft"]["requesttimeoutseconds"] > config["qbft"]["blockperiodseconds"]
    assert config["chainId"] == generated_consortium.chain_id
    assert config["zeroBaseFee"] is True and config["londonBlock"] == 0
    assert genesis["mixHash"] == "0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365"
    assert genesis["difficulty"] == "0x1"
    deployer = generated_consortium.deployer_address.lower().removeprefix("0x")
    assert int(genesis["alloc"][deployer]["balance"], 16) > 0


def test_static_nodes_and_allowlist_name_every_node_by_its_public_key(generated_consortium: Any) -> None:
    out = generated_consortium.out_dir
    static_nodes = json.loads((out / "static-nodes.json").read_text())
    allowlist = tomllib.loads((out / "permissions_config.toml").read_text())["nodes-allowlist"]
    expected = [node.enode(30303) for node in generated_consortium.nodes]
    assert static_nodes == expected
    assert allowlist == expected
    hosts = [enode.rsplit("@", 1)[1] for enode in expected]
    assert hosts == [f"besu-validator{i}:30303" for i in range(1, len(generated_consortium.validators) + 1)] + [
        "besu-rpc:30303"
    ]
    assert _summary(out)["bootnodes"] == expected[:-1]


def test_keys_are_private_and_public_files_readable(generated_consortium: Any) -> None:
    out = generated_consortium.out_dir
    for key_file in out.glob("*/key"):
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600, key_file
    for name in PUBLIC_FILES:
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name
    assert stat.S_IMODE(out.stat().st_mode) == 0o755


def test_rerunning_keeps_keys_and_output_and_force_replaces_keys(generator: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "generated"
    first = generator.generate(out)
    snapshot = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    second = generator.generate(out)
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == snapshot
    assert second.registry_address == first.registry_address
    forced = generator.generate(out, force=True)
    assert forced.deployer_address != first.deployer_address
    assert [n.address for n in forced.validators] != [n.address for n in first.validators]
    assert (out / "registry-address").read_text().strip() == forced.registry_address


def test_custom_hosts_and_validator_count(generator: ModuleType, tmp_path: Path) -> None:
    hosts = [f"node{i}.agency.example" for i in range(1, 6)]
    custom = generator.generate(tmp_path / "g", validators=5, validator_hosts=hosts, rpc_host="rpc.example")
    decoded = rlp.decode(bytes.fromhex(_genesis(custom.out_dir)["extraData"][2:]))
    assert len(decoded[1]) == 5
    static_nodes = json.loads((custom.out_dir / "static-nodes.json").read_text())
    assert [e.rsplit("@", 1)[1] for e in static_nodes] == [*(f"{h}:30303" for h in hosts), "rpc.example:30303"]
    with pytest.raises(ValueError, match="at least 4"):
        generator.generate(tmp_path / "too-few", validators=3)


def test_command_line(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = subprocess.run([sys.executable, str(GENERATOR), "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    registry = (out / "registry-address").read_text().strip()
    assert registry in result.stdout
    refused = subprocess.run([sys.executable, str(GENERATOR), "--out", str(tmp_path / "x"), "--validators", "2"],
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "at least 4" in refused.stderr
