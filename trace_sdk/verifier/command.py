"""`tracechain verify FILE.pdf --rpc-url URL [--ca CA.pem] [--registry ADDR] [--json]`, without the service.

Exit codes: 0 valid; 1 invalid, revoked or recalled; 2 usage or I/O error (missing file, unreadable CA,
bad address, chain RPC unreachable). Only the chain's RPC endpoint is contacted, never the service.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from cryptography import x509
from rich.console import Console
from rich.table import Table
from rich.text import Text
from web3 import Web3

from trace_sdk.verifier.checks import verify_pdf
from trace_sdk.verifier.result import VerificationResult

__all__ = ["EXIT_INVALID", "EXIT_USAGE", "EXIT_VALID", "run_verify"]

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_USAGE = 2

_CHECK_STYLES = {
    "valid": ("✓ 通过 valid", "green"),
    "invalid": ("✗ 不通过 invalid", "bold red"),
    "error": ("! 无法核验 error", "yellow"),
    "skipped": ("– 跳过 skipped", "dim"),
}
_VERDICT_STYLES = {
    "valid": "bold green",
    "revoked": "bold red",
    "recalled": "bold red",
    "invalid": "bold red",
}
_CHECK_LABELS = {
    "payload_integrity": "证书数据完整性",
    "merkle_proof": "Merkle 证明",
    "anchored_on_chain": "链上锚定",
    "agency_membership": "上链机构资格",
    "pdf_signature": "PDF 签名",
    "not_revoked": "未被撤销",
    "not_recalled": "未被召回",
}


def run_verify(path: str, rpc_url: str, ca_path: str | None, as_json: bool, registry: str | None) -> int:
    """Verify the certificate PDF at `path` and print the result; returns the process exit code."""
    out = Console(highlight=False, soft_wrap=not as_json)
    err = Console(stderr=True, highlight=False)
    try:
        pdf_bytes, ca_pem = _load_inputs(path, rpc_url, ca_path, registry)
    except _UsageError as exc:
        err.print(f"[bold red]错误 / error:[/] {exc}")
        return EXIT_USAGE
    try:
        with _quiet_pyhanko():
            result = verify_pdf(pdf_bytes, rpc_url=rpc_url, ca_pem=ca_pem, registry_address=registry)
    except ValueError as exc:  # a CA file cryptography accepted but pyHanko cannot use
        err.print(f"[bold red]错误 / error:[/] CA 证书不可用 / unusable CA: {exc}")
        return EXIT_USAGE
    if as_json:
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    else:
        _print_human(out, result, trust_pinned=bool(ca_pem or registry))
    if result.undecided:
        err.print("[yellow]无法完成验证（区块链节点不可达或读取失败） / verification could not be completed[/]")
        return EXIT_USAGE
    return EXIT_VALID if result.valid else EXIT_INVALID


@contextlib.contextmanager
def _quiet_pyhanko() -> Iterator[None]:
    """Silence pyHanko's warnings (e.g. a path-building traceback without --ca): the checks report them."""
    logger = logging.getLogger("pyhanko")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


class _UsageError(Exception):
    """A bad argument or an unreadable input file."""


def _load_inputs(path: str, rpc_url: str, ca_path: str | None, registry: str | None) -> tuple[bytes, bytes | None]:
    parsed = urlparse(rpc_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise _UsageError(f"--rpc-url 必须是 http(s) 地址 / must be an http(s) URL: {rpc_url!r}")
    if registry is not None and not Web3.is_address(registry):
        raise _UsageError(f"--registry 不是有效的合约地址 / is not an address: {registry!r}")
    try:
        pdf_bytes = Path(path).read_bytes()
    except OSError as exc:
        raise _UsageError(f"无法读取证书文件 / cannot read {path}: {exc.strerror or exc}") from None
    ca_pem: bytes | None = None
    if ca_path is not None:
        try:
            ca_pem = Path(ca_path).read_bytes()
        except OSError as exc:
            raise _UsageError(f"无法读取 CA 证书 / cannot read CA {ca_path}: {exc.strerror or exc}") from None
        try:
            x509.load_pem_x509_certificates(ca_pem)
        except ValueError:
            raise _UsageError(f"CA 文件不是 PEM 格式的 X.509 证书 / not a PEM certificate: {ca_path}") from None
    return pdf_bytes, ca_pem


def _print_human(console: Console, result: VerificationResult, *, trust_pinned: bool) -> None:
    cert, anchor = result.certificate, result.anchor or {}
    table = Table(title="食品安全追溯信息区块链证书验证 / TraceChain certificate verification", show_lines=True)
    table.add_column("检查 Check", no_wrap=True)
    table.add_column("结果 Status", no_wrap=True)
    table.add_column("说明 Message", overflow="fold")
    for check in result.checks:
        label, style = _CHECK_STYLES[check.status]
        name = Text(f"{_CHECK_LABELS.get(check.name, check.name)}\n{check.name}")
        table.add_row(name, Text(label, style=style), Text(check.message))
    console.print(table)
    if cert.get("certificate_id"):
        console.print(f"证书编号 Certificate ID: {cert['certificate_id']}")
        console.print(f"证书哈希 Certificate hash: {cert.get('certificate_hash')}")
    if anchor:
        agency = anchor.get("agency") or {}
        contracts = anchor.get("contracts") or {}
        when = f"区块 block {anchor.get('block_number')}，{anchor.get('block_time')}"
        console.print(f"上链 Anchor: {agency.get('name')} ({agency.get('address')})，{when}")
        console.print(f"上链交易 Anchor tx: {anchor.get('tx_hash')} (chain {anchor.get('chain_id')})")
        console.print(f"注册合约 ConsortiumRegistry: {contracts.get('ConsortiumRegistry')}")
        console.print(f"锚定合约 TraceAnchor: {contracts.get('TraceAnchor')}")
        if not trust_pinned:
            console.print(
                "[yellow]未指定 --ca 或 --registry：结论的可信度取决于上述合约地址，"
                "请与联盟公布的地址核对。\n"
                "No --ca or --registry given: trust rests on the contract addresses above; compare them with "
                "the consortium's published ones.[/]"
            )
    style = _VERDICT_STYLES.get(result.status, "bold yellow")
    console.print(Text(f"验证结论 Verdict: {result.label}", style=style))
