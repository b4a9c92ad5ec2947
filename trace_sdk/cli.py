"""`tracechain`: the command line for agencies (submit, outbox, members, verify) and operators (up, enterprise)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trace_sdk.exceptions import ConflictError, FieldError, TraceError, ValidationError
from trace_sdk.protocol.records import validate_records

app = typer.Typer(
    rich_markup_mode="rich",
    no_args_is_help=True,
    help="TraceChain — food-safety traceability consortium chain (食品安全追溯联盟链).",
)
outbox_app = typer.Typer(no_args_is_help=True, help="The agency's local outbox of records not yet delivered.")
member_app = typer.Typer(no_args_is_help=True, help="Consortium members and M-of-N governance proposals.")
enterprise_app = typer.Typer(no_args_is_help=True, help="Enterprises that download their certificates.")
app.add_typer(outbox_app, name="outbox")
app.add_typer(member_app, name="member")
app.add_typer(enterprise_app, name="enterprise")

console = Console()
err_console = Console(stderr=True)

KeyFile = Annotated[
    Path | None, typer.Option("--key-file", help="File holding the agency's hex private key (0x…).")
]
Agency = Annotated[
    str | None,
    typer.Option("--agency", help="Demo only: take the key of this agency code from demo-consortium.json."),
]
ServiceUrl = Annotated[str | None, typer.Option("--service-url", help="Certificate service base URL.")]
RpcUrl = Annotated[str | None, typer.Option("--rpc-url", help="Chain JSON-RPC URL.")]
OutboxPath = Annotated[Path | None, typer.Option("--outbox", help="Outbox SQLite file (default: user data dir).")]


def _data_dir() -> Path:
    return Path(os.environ.get("TRACECHAIN_DATA_DIR", "./.tracechain"))


def _demo() -> dict[str, Any]:
    path = _data_dir() / "demo-consortium.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]error:[/] {message}")
    return typer.Exit(code)


@contextmanager
def _reported() -> Iterator[None]:
    """Turn a TraceChain error into a red message and exit code 1 (the CLI's one error edge)."""
    try:
        yield
    except TraceError as exc:
        raise _fail(str(exc)) from None


def _resolve_key(key_file: Path | None, agency: str | None) -> str:
    if key_file is not None:
        try:
            key = key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise _fail(f"cannot read key file {key_file}: {exc.strerror}", 2) from None
        if not key.startswith("0x"):
            key = "0x" + key
        return key
    if agency is not None:
        for entry in _demo().get("agencies", []):
            if entry["code"] == agency:
                return str(entry["private_key"])
        raise _fail(f"agency {agency!r} is not in {_data_dir() / 'demo-consortium.json'}", 2)
    raise _fail("give --key-file KEY (or, on the demo consortium, --agency CODE)", 2)


def _urls(service_url: str | None, rpc_url: str | None) -> tuple[str, str]:
    demo = _demo()
    service = service_url or os.environ.get("TRACECHAIN_SERVICE_URL") or demo.get("service_url") or (
        "http://127.0.0.1:" + os.environ.get("TRACECHAIN_HTTP_PORT", "8000")
    )
    rpc = rpc_url or os.environ.get("TRACECHAIN_RPC_URL") or demo.get("rpc_url") or (
        "http://127.0.0.1:" + os.environ.get("TRACECHAIN_ANVIL_PORT", "8545")
    )
    return str(service), str(rpc)


def _agency_client(key_file: Path | None, agency: str | None, service_url: str | None, rpc_url: str | None,
                   outbox: Path | None) -> Any:
    from trace_sdk.client.agency import AgencyClient

    service, rpc = _urls(service_url, rpc_url)
    return AgencyClient(service, rpc, _resolve_key(key_file, agency), outbox_path=outbox)


def _print_errors(errors: list[Any], *, anchored: bool = False) -> None:
    outcome = "these records were not submitted" if anchored else "nothing was anchored"
    table = Table(title=f"{len(errors)} problem(s) — {outcome}", title_style="red")
    for column in ("#", "record", "path", "message"):
        table.add_column(column, overflow="fold")
    for error in errors:
        table.add_row(str(error.index), error.record_id or "", error.path or "(record)", error.message)
    err_console.print(table)


def _read_jsonl(path: Path) -> list[Any]:
    records = []
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise _fail(f"{path}:{number}: not valid JSON ({exc.msg})", 2) from None
    except OSError as exc:
        raise _fail(f"cannot read {path}: {exc.strerror}", 2) from None
    return records


@app.command()
def up() -> None:
    """Start the local consortium: Anvil, contracts, demo agencies, certificate service (Ctrl-C stops)."""
    from chain_node.up import run_up

    try:
        code = run_up()
    except (TraceError, RuntimeError, ValueError) as exc:
        raise _fail(str(exc)) from None
    raise typer.Exit(code)


@app.command()
def deploy(
    expect_registry: Annotated[
        str | None,
        typer.Option("--expect-registry", help="Refuse unless ConsortiumRegistry lands at this address "
                     "(the address the Besu nodes' account permissioning points at)."),
    ] = None,
) -> None:
    """Prepare TRACECHAIN_RPC_URL once (deploy, seed, register the issuer) and exit — for containers/Besu."""
    from chain_node.deploy_command import run_deploy

    raise typer.Exit(run_deploy(expected_registry=expect_registry))


@app.command()
def submit(
    file: Annotated[Path, typer.Argument(help="Records, one JSON object per line (.jsonl).")],
    key_file: KeyFile = None,
    agency: Agency = None,
    service_url: ServiceUrl = None,
    rpc_url: RpcUrl = None,
    outbox: OutboxPath = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Records per anchored batch.")] = 1000,
    skip_invalid: Annotated[bool, typer.Option(help="Submit the valid records even if some are bad.")] = False,
) -> None:
    """Validate, anchor (one transaction per batch) and upload traceability records."""
    records = _read_jsonl(file)
    if not skip_invalid:
        try:  # the whole file first: one bad record means nothing is anchored
            validate_records(records)
        except ValidationError as exc:
            _print_errors(exc.errors)
            raise typer.Exit(1) from None
    client = _agency_client(key_file, agency, service_url, rpc_url, outbox)
    started = time.perf_counter()
    batches = max(1, -(-len(records) // batch_size))
    receipts: list[Any] = []
    rejected: list[FieldError] = []
    failure: TraceError | None = None
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    ) as progress:
        rec_task = progress.add_task("records", total=len(records))
        batch_task = progress.add_task("batches", total=batches)
        for start in range(0, len(records), batch_size):
            chunk = records[start : start + batch_size]
            try:
                receipts += client.submit(chunk, batch_size=batch_size, skip_invalid=skip_invalid)
            except ValidationError as exc:
                receipts += getattr(exc, "receipts", [])
                rejected += [FieldError(e.index + start, e.record_id, e.path, e.message) for e in exc.errors]
            except ConflictError as exc:
                receipts += getattr(exc, "receipts", [])
                index = next((i for i, r in enumerate(chunk) if r.get("record_id") == exc.record_id), 0)
                rejected.append(FieldError(start + index, exc.record_id, "record_id", str(exc)))
            except TraceError as exc:  # chain/service unreachable, not a member…: stop, the outbox keeps the rest
                receipts += getattr(exc, "receipts", [])
                failure = exc
                break
            if rejected and not skip_invalid:
                break
            progress.advance(rec_task, len(chunk))
            progress.advance(batch_task)
    duration = time.perf_counter() - started
    roots = {r.merkle_root for r in receipts}
    txs = {r.tx_hash for r in receipts if r.tx_hash}
    gas = sum(b.gas_used or 0 for b in (client.outbox.batch_by_root(root) for root in roots) if b)
    summary = Table(title="submission summary", show_header=False)
    summary.add_row("records accepted", str(len(receipts)))
    summary.add_row("batches", str(len(roots)))
    summary.add_row("transactions", str(len(txs)))
    summary.add_row("gas used", f"{gas:,}")
    summary.add_row("duration", f"{duration:.2f} s")
    if receipts:
        summary.add_row("records/s", f"{len(receipts) / duration:,.0f}")
    console.print(summary)
    client.close()
    if rejected:
        _print_errors(rejected, anchored=bool(receipts))
    if failure is not None:
        raise _fail(str(failure))
    if rejected:
        raise typer.Exit(1)


@outbox_app.command("status")
def outbox_status(
    key_file: KeyFile = None, agency: Agency = None, service_url: ServiceUrl = None, rpc_url: RpcUrl = None,
    outbox: OutboxPath = None,
) -> None:
    """Show records waiting in the outbox, by state."""
    client = _agency_client(key_file, agency, service_url, rpc_url, outbox)
    counts = client.outbox.counts(client.address)
    table = Table(title=f"outbox {client.outbox.path} — {client.address}")
    table.add_column("state")
    table.add_column("records", justify="right")
    for state, count in counts.items():
        table.add_row(state, str(count))
    console.print(table)
    for batch in client.pending():
        console.print(f"  waiting: root {batch.root} ({batch.records} records, {batch.state})"
                      + (f" — last error: {batch.last_error}" if batch.last_error else ""))
    client.close()


@outbox_app.command("flush")
def outbox_flush(
    key_file: KeyFile = None, agency: Agency = None, service_url: ServiceUrl = None, rpc_url: RpcUrl = None,
    outbox: OutboxPath = None,
) -> None:
    """Deliver everything waiting in the outbox (anchor, upload)."""
    client = _agency_client(key_file, agency, service_url, rpc_url, outbox)
    with _reported(), contextlib.closing(client):
        receipts = client.flush()
    console.print(f"delivered {len(receipts)} record(s); nothing left waiting")


def _governance(key_file: Path | None, agency: str | None, rpc_url: str | None, registry: str | None) -> Any:
    from trace_sdk.client.governance import GovernanceClient

    _, rpc = _urls(None, rpc_url)
    registry = registry or _demo().get("contracts", {}).get("ConsortiumRegistry")
    if not registry:
        raise _fail("give --registry ADDRESS (no demo-consortium.json found)", 2)
    return GovernanceClient(rpc, _resolve_key(key_file, agency), registry)


Registry = Annotated[str | None, typer.Option("--registry", help="ConsortiumRegistry address.")]


@member_app.command("list")
def member_list(rpc_url: RpcUrl = None, registry: Registry = None, key_file: KeyFile = None,
                agency: Agency = None) -> None:
    """List members with their roles and whether they are active."""
    if key_file is None and agency is None:
        agency = next(iter(a["code"] for a in _demo().get("agencies", [])), None)
    gov = _governance(key_file, agency, rpc_url, registry)
    table = Table(title="consortium members")
    for column in ("name", "code", "address", "roles", "active"):
        table.add_column(column)
    for m in gov.members():
        table.add_row(m.name, m.code, m.address, ",".join(m.roles), "yes" if m.active else "no")
    console.print(table)


@member_app.command("propose-add")
def member_propose_add(
    address: Annotated[str, typer.Argument()],
    name: Annotated[str, typer.Option("--name")],
    code: Annotated[str, typer.Option("--code")],
    roles: Annotated[str, typer.Option("--roles", help="Comma-separated: MEMBER,REGULATOR,ISSUER")] = "MEMBER",
    key_file: KeyFile = None, agency: Agency = None, rpc_url: RpcUrl = None, registry: Registry = None,
) -> None:
    """Propose adding a member agency (counts as your YES vote)."""
    gov = _governance(key_file, agency, rpc_url, registry)
    with _reported():
        proposal_id = gov.propose_add_member(address, name, code, [r.strip() for r in roles.split(",")])
    console.print(f"proposal {proposal_id} created")


@member_app.command("propose-remove")
def member_propose_remove(
    address: Annotated[str, typer.Argument()],
    key_file: KeyFile = None, agency: Agency = None, rpc_url: RpcUrl = None, registry: Registry = None,
) -> None:
    """Propose removing a member agency (counts as your YES vote)."""
    gov = _governance(key_file, agency, rpc_url, registry)
    with _reported():
        proposal_id = gov.propose_remove_member(address)
    console.print(f"proposal {proposal_id} created")


@member_app.command("vote")
def member_vote(
    proposal_id: Annotated[int, typer.Argument()],
    against: Annotated[bool, typer.Option("--against", help="Vote NO instead of YES.")] = False,
    key_file: KeyFile = None, agency: Agency = None, rpc_url: RpcUrl = None, registry: Registry = None,
) -> None:
    """Vote on a proposal; the vote that reaches the threshold executes it."""
    gov = _governance(key_file, agency, rpc_url, registry)
    with _reported():
        gov.vote(proposal_id, support=not against)
    console.print(f"voted {'NO' if against else 'YES'} on proposal {proposal_id}")


@app.command()
def verify(
    file: Annotated[str, typer.Argument(help="Certificate PDF (食品安全追溯信息区块链证书).")],
    rpc_url: Annotated[str, typer.Option("--rpc-url", help="Chain JSON-RPC URL.")],
    ca: Annotated[str | None, typer.Option("--ca", help="Consortium CA certificate (PEM).")] = None,
    registry: Registry = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON result.")] = False,
) -> None:
    """Verify a certificate independently: only the PDF, the chain and the CA (never the service)."""
    from trace_sdk.verifier.command import run_verify

    raise typer.Exit(run_verify(file, rpc_url, ca, as_json, registry))


@app.command()
def revoke(
    record_id: Annotated[str, typer.Argument()],
    reason: Annotated[str, typer.Option("--reason")],
    key_file: KeyFile = None, agency: Agency = None, service_url: ServiceUrl = None, rpc_url: RpcUrl = None,
    outbox: OutboxPath = None,
) -> None:
    """Revoke one record this agency submitted."""
    client = _agency_client(key_file, agency, service_url, rpc_url, outbox)
    with _reported():
        result = client.revoke(record_id, reason)
    console.print_json(data=result)


@app.command()
def recall(
    trace_code: Annotated[str, typer.Argument()],
    reason: Annotated[str, typer.Option("--reason")],
    key_file: KeyFile = None, agency: Agency = None, service_url: ServiceUrl = None, rpc_url: RpcUrl = None,
) -> None:
    """Recall a lot (REGULATOR): it and every downstream lot verify as recalled."""
    client = _agency_client(key_file, agency, service_url, rpc_url, None)
    with _reported():
        result = client.recall(trace_code, reason)
    console.print_json(data=result)


@app.command()
def trace(
    trace_code: Annotated[str, typer.Argument()],
    direction: Annotated[str, typer.Option(help="forward (追踪) or backward (溯源)")] = "forward",
    key_file: KeyFile = None, agency: Agency = None, service_url: ServiceUrl = None, rpc_url: RpcUrl = None,
) -> None:
    """Every lot and enterprise downstream (forward) or upstream (backward) of a lot."""
    client = _agency_client(key_file, agency, service_url, rpc_url, None)
    with _reported():
        console.print_json(data=client.trace(trace_code, direction))


@enterprise_app.command("add")
def enterprise_add(
    uscc: Annotated[str, typer.Option("--uscc", help="统一社会信用代码 of the enterprise.")],
    name: Annotated[str, typer.Option("--name", help="Enterprise name.")],
) -> None:
    """Register an enterprise; prints a new API token as the last line (stored hashed, shown once)."""
    from certificate_service.enterprises import register_enterprise_from_env

    try:
        token = register_enterprise_from_env(uscc=uscc, name=name)
    except (TraceError, ValueError) as exc:
        raise _fail(str(exc)) from None
    console.print(f"enterprise {name} ({uscc}) registered; its API token (shown once):")
    print(token)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
