"""The `tracechain` CLI as a clerk uses it: submit, outbox, members and governance, against real services."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from typer.testing import CliRunner

from tests.support.service import ServiceProcess, write_deployment
from trace_sdk.cli import app
from trace_sdk.client.governance import GovernanceClient

runner = CliRunner()


@pytest.fixture(scope="module")
def service(consortium: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    data_dir = tmp_path_factory.mktemp("cli-service")
    write_deployment(data_dir, consortium.deployment, consortium.rpc_url)
    proc = ServiceProcess(data_dir=data_dir, rpc_url=consortium.rpc_url).start()
    yield proc
    proc.stop()


@pytest.fixture
def key_file(consortium: Any, tmp_path: Path) -> Path:
    path = tmp_path / "customs.key"
    path.write_text(consortium.keys["customs"])
    path.chmod(0o600)
    return path


def _jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    return path


def _args(service: ServiceProcess, consortium: Any, key_file: Path, outbox: Path) -> list[str]:
    return ["--key-file", str(key_file), "--service-url", service.url, "--rpc-url", consortium.rpc_url,
            "--outbox", str(outbox)]


def test_submit_prints_a_summary_and_outbox_status_shows_delivery(
    service: ServiceProcess, consortium: Any, key_file: Path, tmp_path: Path, sample_records: list[dict[str, Any]]
) -> None:
    records = copy.deepcopy(sample_records[:7])
    for r in records:
        r["record_id"] = "cli-" + r["record_id"]
    outbox = tmp_path / "outbox.sqlite3"
    result = runner.invoke(app, ["submit", str(_jsonl(tmp_path / "r.jsonl", records)), "--batch-size", "3",
                                 *_args(service, consortium, key_file, outbox)])
    assert result.exit_code == 0, result.output
    assert re.search(r"records accepted\s*│\s*7\s", result.output), result.output
    assert re.search(r"transactions\s*│\s*3\s", result.output)  # 7 records in batches of 3
    status = runner.invoke(app, ["outbox", "status", *_args(service, consortium, key_file, outbox)])
    assert status.exit_code == 0, status.output
    assert "uploaded" in status.output and "waiting" not in status.output
    flush = runner.invoke(app, ["outbox", "flush", *_args(service, consortium, key_file, outbox)])
    assert flush.exit_code == 0 and "delivered 0 record(s)" in flush.output


def test_submit_with_bad_records_exits_non_zero_and_lists_every_problem(
    service: ServiceProcess, consortium: Any, key_file: Path, tmp_path: Path, sample_records: list[dict[str, Any]]
) -> None:
    records = copy.deepcopy(sample_records[:3])
    for r in records:
        r["record_id"] = "cli-bad-" + r["record_id"]
    records[0]["enterprise"]["uscc"] = "91310115735468487X"
    records[2]["event_type"] = "Shipment"
    outbox = tmp_path / "outbox.sqlite3"
    result = runner.invoke(app, ["submit", str(_jsonl(tmp_path / "bad.jsonl", records)),
                                 *_args(service, consortium, key_file, outbox)], terminal_width=200)
    assert result.exit_code == 1
    assert "enterprise.uscc" in result.output and "event_type" in result.output
    assert records[0]["record_id"] in result.output and records[2]["record_id"] in result.output
    assert "nothing was anchored" in result.output


def test_submit_reports_unreadable_input_as_a_usage_error(
    service: ServiceProcess, consortium: Any, key_file: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"schema": "trace-record/v1"\n')
    result = runner.invoke(app, ["submit", str(broken), *_args(service, consortium, key_file, tmp_path / "o")])
    # Rich wraps messages at the terminal width (here the long tmp path): compare with whitespace collapsed.
    assert result.exit_code == 2 and "not valid JSON" in " ".join(result.output.split())
    missing = runner.invoke(app, ["submit", str(tmp_path / "nope.jsonl"),
                                  *_args(service, consortium, key_file, tmp_path / "o")])
    assert missing.exit_code == 2


def test_member_commands_run_a_governance_vote(consortium: Any, tmp_path: Path) -> None:
    registry = consortium.deployment.registry
    keys = {}
    for name in ("customs", "samr", "bdc", "agri"):
        keys[name] = tmp_path / f"{name}.key"
        keys[name].write_text(consortium.keys[name])
    newcomer = Account.create()
    common = ["--rpc-url", consortium.rpc_url, "--registry", registry]

    listing = runner.invoke(app, ["member", "list", "--key-file", str(keys["customs"]), *common],
                            terminal_width=200)
    assert listing.exit_code == 0, listing.output
    assert "SHCUSTOMS" in listing.output and "REGULATOR" in listing.output

    proposed = runner.invoke(app, ["member", "propose-add", newcomer.address, "--name", "上海市商务委员会",
                                   "--code", "SHCOMM", "--roles", "MEMBER", "--key-file", str(keys["customs"]),
                                   *common])
    assert proposed.exit_code == 0, proposed.output
    proposal_id = int(proposed.output.split("proposal ")[1].split()[0])
    double = runner.invoke(app, ["member", "vote", str(proposal_id), "--key-file", str(keys["customs"]), *common])
    assert double.exit_code == 1 and "error" in double.output.lower()
    gov = GovernanceClient(consortium.rpc_url, consortium.keys["customs"], registry)
    for voter in ("samr", "bdc"):
        if gov.proposal_executed(proposal_id):
            break
        vote = runner.invoke(app, ["member", "vote", str(proposal_id), "--key-file", str(keys[voter]), *common])
        assert vote.exit_code == 0, vote.output
    assert gov.proposal_executed(proposal_id)
    assert any(m.address == newcomer.address and m.active for m in gov.members())

    removal = runner.invoke(app, ["member", "propose-remove", newcomer.address, "--key-file", str(keys["agri"]),
                                  *common])
    assert removal.exit_code == 0, removal.output


def test_a_bad_record_in_a_later_batch_stops_everything_before_anchoring(
    service: ServiceProcess, consortium: Any, key_file: Path, tmp_path: Path, sample_records: list[dict[str, Any]]
) -> None:
    from web3 import Web3

    records = copy.deepcopy(sample_records[:7])
    for r in records:
        r["record_id"] = "cli-late-" + r["record_id"]
    records[6]["product"]["gtin"] = "6906900602670"
    w3 = Web3(Web3.HTTPProvider(consortium.rpc_url))
    before = w3.eth.get_transaction_count(consortium.address["customs"])
    result = runner.invoke(app, ["submit", str(_jsonl(tmp_path / "late.jsonl", records)), "--batch-size", "3",
                                 *_args(service, consortium, key_file, tmp_path / "o.sqlite3")], terminal_width=200)
    assert result.exit_code == 1 and "product.gtin" in result.output and "nothing was anchored" in result.output
    assert w3.eth.get_transaction_count(consortium.address["customs"]) == before


def test_skip_invalid_reports_the_problems_of_every_batch(
    service: ServiceProcess, consortium: Any, key_file: Path, tmp_path: Path, sample_records: list[dict[str, Any]]
) -> None:
    records = copy.deepcopy(sample_records[:7])
    for r in records:
        r["record_id"] = "cli-skip-" + r["record_id"]
    records[1]["product"]["gtin"] = "6906900602670"
    records[5]["event_type"] = "Shipment"
    result = runner.invoke(app, ["submit", str(_jsonl(tmp_path / "skip.jsonl", records)), "--batch-size", "3",
                                 "--skip-invalid", *_args(service, consortium, key_file, tmp_path / "o.sqlite3")],
                           terminal_width=200)
    assert result.exit_code == 1
    assert "product.gtin" in result.output and "event_type" in result.output
    assert re.search(r"records accepted\s*│\s*5\s", result.output), result.output
