"""Verify a TraceChain certificate (payload or signed PDF) against the chain, without the certificate service.

One implementation behind the CLI (`tracechain verify`) and the service's verification endpoint; each rule
is reported as its own `Check` under a stable name:

- `payload_integrity` - disclosed fields + salts + hidden field hashes give `record_hash`; `certificate_id`
  derives from it; `certificate_hash` = keccak256(JCS(payload without `certificate_hash`)).
- `merkle_proof` - leaf = keccak256(record_hash), and the proof leads from it to the root.
- `anchored_on_chain` - TraceAnchor knows the root, anchored by the payload's agency, at the payload's
  block, time and transaction, on the payload's chain and contracts.
- `agency_membership` - the anchoring agency was an active MEMBER at the anchor block (`wasMemberAt`).
- `pdf_signature` - one intact signature covering the entire file, by a certificate whose SHA-256
  fingerprint the registry lists for an active ISSUER, chained to the consortium CA when one is given;
  `skipped` for a bare payload.
- `not_revoked`, `not_recalled` - the record is not revoked; neither its lot, nor its inputs, nor any
  upstream lot of its lineage was recalled.

A chain that cannot be reached makes the affected checks `error` and the result not valid (fail closed).

Trust: the ConsortiumRegistry and TraceAnchor addresses come from the certificate itself unless
`registry_address` pins the registry. With a consortium CA (`--ca`) the signature binds those addresses to
the issuer the CA certified; with a pinned registry only a fingerprint that registry lists as ISSUER can
sign. Without either, a forger could deploy look-alike contracts and register their own key there, so
trust rests on the contract addresses printed in the result: compare them with the consortium's published
ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from web3 import Web3

from trace_sdk.exceptions import CanonicalizationError, ChainError, ChainUnavailableError
from trace_sdk.protocol.canonical import canonicalize
from trace_sdk.protocol.certificate_ids import certificate_id_for
from trace_sdk.protocol.hashing import (
    from_hex,
    keccak256,
    leaf_hash,
    record_hash_from_disclosure,
    to_hex,
    trace_code_hash,
)
from trace_sdk.protocol.merkle import verify_proof
from trace_sdk.verifier.chain_reader import (
    AnchoredBatch,
    ChainReader,
    ContractNotFoundError,
    FactCache,
    checksum_address,
)
from trace_sdk.verifier.result import (
    Check,
    CheckStatus,
    LotRecall,
    RecordRevocation,
    VerificationResult,
    decide_verdict,
)

if TYPE_CHECKING:
    from trace_sdk.verifier.pdf_evidence import PdfEvidence

__all__ = [
    "CERTIFICATE_TYPE",
    "async_verify_payload",
    "async_verify_pdf",
    "verify_payload",
    "verify_pdf",
]

CERTIFICATE_TYPE = "tracechain-certificate/v1"
ATTACHMENT_NAME = "certificate.json"
_ROLE_LABELS = {"self": "本批次", "input": "直接原料批次", "upstream": "上游批次", "extra": "上游批次"}
_UNAVAILABLE = "无法连接区块链节点，未能核验"


# ---------------------------------------------------------------------------------------------------- public


def verify_payload(
    payload: Mapping[str, Any] | None,
    chain: ChainReader,
    *,
    pdf: PdfEvidence | None = None,
    extra_upstream_trace_codes: Iterable[str] = (),
    require_ca_chain: bool = False,
) -> VerificationResult:
    """Run every check on a certificate payload (and the evidence of its PDF, if any) against `chain`.

    `chain` is trusted: the payload's contract addresses must be the ones it reads. `require_ca_chain`
    demands that the PDF's signer chains to a trust root (set when a consortium CA was given).
    """
    return _Verification(
        payload, chain, pdf=pdf, extra=tuple(extra_upstream_trace_codes), require_ca_chain=require_ca_chain
    ).run()


async def async_verify_payload(
    payload: Mapping[str, Any] | None,
    chain: ChainReader,
    *,
    pdf: PdfEvidence | None = None,
    extra_upstream_trace_codes: Iterable[str] = (),
    require_ca_chain: bool = False,
) -> VerificationResult:
    """`verify_payload` in a worker thread, so an event loop is not blocked by the chain reads."""
    extra = tuple(extra_upstream_trace_codes)
    return await asyncio.to_thread(
        verify_payload,
        payload,
        chain,
        pdf=pdf,
        extra_upstream_trace_codes=extra,
        require_ca_chain=require_ca_chain,
    )


def verify_pdf(
    pdf_bytes: bytes, *, rpc_url: str, ca_pem: bytes | None, registry_address: str | None = None
) -> VerificationResult:
    """Verify a signed certificate PDF with only a chain RPC endpoint and, optionally, the consortium CA.

    Never raises for a bad PDF or an unreachable chain (those are checks); raises `ValueError` only for an
    unreadable `ca_pem`.
    """
    from trace_sdk.verifier.pdf_evidence import read_certificate_pdf  # pyHanko is only loaded for PDFs

    evidence = read_certificate_pdf(pdf_bytes, [ca_pem] if ca_pem else [])
    return _verify_evidence(evidence, rpc_url=rpc_url, ca_given=bool(ca_pem), registry_address=registry_address)


async def async_verify_pdf(
    pdf_bytes: bytes, *, rpc_url: str, ca_pem: bytes | None, registry_address: str | None = None
) -> VerificationResult:
    """Async core of `verify_pdf`: pyHanko's validation on the loop, the chain reads in a worker thread."""
    from trace_sdk.verifier.pdf_evidence import async_read_certificate_pdf

    evidence = await async_read_certificate_pdf(pdf_bytes, [ca_pem] if ca_pem else [])
    return await asyncio.to_thread(
        _verify_evidence, evidence, rpc_url=rpc_url, ca_given=bool(ca_pem), registry_address=registry_address
    )


# ------------------------------------------------------------------------------------------------ PDF glue

_READERS = FactCache(maxsize=8)  # ChainReaders (and their immutable-fact LRUs) reused across PDFs


def _verify_evidence(
    evidence: PdfEvidence, *, rpc_url: str, ca_given: bool, registry_address: str | None
) -> VerificationResult:
    payload = evidence.payload
    contracts = _get(payload, "anchor", "contracts")
    registry = registry_address or (contracts.get("ConsortiumRegistry") if isinstance(contracts, dict) else None)
    anchor = contracts.get("TraceAnchor") if isinstance(contracts, dict) else None
    chain: ChainReader | None = None
    problem = "证书未给出有效的合约地址"
    if isinstance(registry, str) and isinstance(anchor, str) and _is_address(registry) and _is_address(anchor):
        key = (rpc_url, checksum_address(registry), checksum_address(anchor))
        chain = _READERS.get(key)
        if chain is None:
            chain = ChainReader(rpc_url, registry, anchor)
            _READERS.put(key, chain)
    elif registry_address and not _is_address(registry_address):
        problem = f"指定的注册合约地址无效：{registry_address}"
    return _Verification(payload, chain, pdf=evidence, require_ca_chain=ca_given, no_chain_reason=problem).run()


# ---------------------------------------------------------------------------------------------------- checks


@dataclass
class _Facts:
    """What the checks established, for the result's public fields."""

    record_hash: bytes | None = None
    batch: AnchoredBatch | None = None
    revocation: RecordRevocation | None = None
    recalls: list[LotRecall] = field(default_factory=list)


class _Verification:
    """One verification run: the checks in order, sharing parsed values and the chain's availability."""

    def __init__(
        self,
        payload: Mapping[str, Any] | None,
        chain: ChainReader | None,
        *,
        pdf: PdfEvidence | None,
        extra: Sequence[str] = (),
        require_ca_chain: bool = False,
        no_chain_reason: str = "",
    ) -> None:
        self.payload: dict[str, Any] | None = dict(payload) if isinstance(payload, Mapping) else None
        self.chain = chain
        self.pdf = pdf
        self.extra = tuple(extra)
        self.require_ca_chain = require_ca_chain
        self.no_chain_reason = no_chain_reason
        self.unavailable: ChainUnavailableError | None = None
        self.facts = _Facts()

    def run(self) -> VerificationResult:
        """Run every check and assemble the result."""
        checks = [self._payload_integrity(), self._merkle_proof()]
        with contextlib.ExitStack() as stack:
            if self.chain is not None and self.payload is not None:
                try:  # every chain fact the checks need, in one JSON-RPC batch
                    stack.enter_context(self.chain.prefetched(self._plan()))
                except ChainUnavailableError as exc:
                    self.unavailable = exc
                except ChainError:
                    pass  # each check reads (and reports) on its own
            checks += [
                self._guarded("anchored_on_chain", self._anchored_on_chain, invalid_on_missing_contract=True),
                self._guarded("agency_membership", self._agency_membership),
                self._pdf_signature(),
                self._guarded("not_revoked", self._not_revoked),
                self._guarded("not_recalled", self._not_recalled),
            ]
        status = decide_verdict(checks, revoked=self.facts.revocation is not None, recalled=bool(self.facts.recalls))
        return VerificationResult(
            status=status,
            checks=tuple(checks),
            certificate=self._public_certificate(),
            anchor=self._public_anchor(),
            revocation=self.facts.revocation,
            recalls=tuple(self.facts.recalls),
        )

    def _plan(self) -> list[tuple[str, tuple[Any, ...]]]:
        """The chain reads the checks will make, as far as the payload's claims tell (for one batch)."""
        assert self.chain is not None
        chain = self.chain
        plan: list[tuple[str, tuple[Any, ...]]] = [
            ("has_code", (chain.registry_address,)),
            ("has_code", (chain.anchor_address,)),
            ("anchor_registry", ()),
            ("chain_id", ()),
        ]
        root = _hex32(_get(self.payload, "merkle", "root"))
        if root is not None:
            plan.append(("batch", (root,)))
        tx_hash = _get(self.payload, "anchor", "tx_hash")
        if _hex32(tx_hash) is not None:
            plan.append(("anchor_transaction", (tx_hash,)))
        agency, block = _get(self.payload, "anchor", "agency", "address"), _get(self.payload, "anchor", "block_number")
        if _is_address(agency):
            plan.append(("member", (agency,)))
            if isinstance(block, int) and not isinstance(block, bool) and block >= 0:
                plan.append(("was_member_at", (agency, block)))
        if self.facts.record_hash is not None and root is not None:
            plan.append(("revocation", (root, self.facts.record_hash)))
        plan += [("recall", (trace_code_hash(code),)) for code in self._lots()]
        fp = self._signer_fingerprint()
        if fp is not None:
            plan.append(("is_issuer_fingerprint", (fp,)))
            issuer = _get(self.payload, "issuer", "address")
            if _is_address(issuer):
                plan.append(("issuer_fingerprint", (issuer,)))
        return plan

    def _lots(self) -> dict[str, str]:
        """Trace code -> relation (self, input, upstream, extra) of every lot whose recall affects the record."""
        assert self.payload is not None
        record = self.payload.get("record") if isinstance(self.payload.get("record"), dict) else {}
        lots: dict[str, str] = {}
        own = record.get("trace_code")
        if isinstance(own, str) and own:
            lots[own] = "self"
        for relation, codes in (
            ("input", record.get("inputs")),
            ("upstream", _get(self.payload, "lineage", "upstream_trace_codes")),
            ("extra", self.extra),
        ):
            for code in codes if isinstance(codes, list | tuple) else ():
                if isinstance(code, str) and code:
                    lots.setdefault(code, relation)
        return lots

    def _signer_fingerprint(self) -> bytes | None:
        """The PDF signer's certificate fingerprint, if there is a PDF and it names one."""
        if self.pdf is None:
            return None
        fp_hex = (self.pdf.signer_fingerprint_sha256 or "").lower().removeprefix("0x")
        return bytes.fromhex(fp_hex) if len(fp_hex) == 64 and _is_hex(fp_hex) else None

    # ------------------------------------------------------------------ payload_integrity

    def _payload_integrity(self) -> Check:
        name = "payload_integrity"
        p = self.payload
        if p is None:
            if self.pdf is not None:
                why = "；".join(self.pdf.problems) or "附件缺失或无法解析"
                return Check(name, "invalid", f"PDF 中没有可解析的证书数据 certificate.json：{why}")
            return Check(name, "invalid", "证书数据不是 JSON 对象")
        problems: list[str] = []
        if p.get("type") != CERTIFICATE_TYPE:
            problems.append(f"证书类型不是 {CERTIFICATE_TYPE}")
        record, salts, hidden = p.get("record"), p.get("salts"), p.get("hidden_fields")
        stated = _hex32(p.get("record_hash"))
        self.facts.record_hash = stated
        if stated is None:
            problems.append("记录哈希 record_hash 缺失或格式错误")
        computed: bytes | None = None
        if not isinstance(record, dict) or not isinstance(salts, dict) or not isinstance(hidden, dict):
            problems.append("公开字段 record、盐值 salts 或隐藏字段 hidden_fields 缺失或格式错误")
        else:
            computed, why = _recompute_record_hash(record, salts, hidden)
            if computed is None:
                problems.append(f"无法由公开字段重算记录哈希：{why}")
            elif stated is not None and computed != stated:
                problems.append("由公开字段、盐值和隐藏字段哈希重算的记录哈希与证书所载不符（字段或盐值被改动）")
        basis = computed or stated
        if basis is not None and p.get("certificate_id") != certificate_id_for(basis):
            problems.append("证书编号与记录哈希不对应")
        if not isinstance(p.get("certificate_hash"), str):
            problems.append("证书哈希 certificate_hash 缺失")
        else:
            body = {k: v for k, v in p.items() if k != "certificate_hash"}
            try:
                digest = to_hex(keccak256(canonicalize(body)))
            except CanonicalizationError as exc:
                problems.append(f"证书数据无法规范化：{exc}")
            else:
                if digest != p["certificate_hash"].lower():
                    problems.append("证书哈希与证书内容不符（证书内容被改动）")
        problems.extend(self._lineage_shape())
        if problems:
            return Check(name, "invalid", "；".join(problems))
        return Check(name, "valid", "公开字段、盐值与隐藏字段哈希重算出的记录哈希、证书编号和证书哈希均一致")

    def _lineage_shape(self) -> list[str]:
        assert self.payload is not None
        lineage = self.payload.get("lineage", {})
        codes = lineage.get("upstream_trace_codes", []) if isinstance(lineage, dict) else None
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            return ["上游批次 lineage.upstream_trace_codes 格式错误"]
        return []

    # ------------------------------------------------------------------ merkle_proof

    def _merkle_proof(self) -> Check:
        name = "merkle_proof"
        if self.payload is None:
            return Check(name, "skipped", "无证书数据")
        merkle = self.payload.get("merkle")
        rh = self.facts.record_hash
        if rh is None or not isinstance(merkle, dict):
            return Check(name, "invalid", "缺少记录哈希或 Merkle 证明")
        leaf, root, proof = _hex32(merkle.get("leaf")), _hex32(merkle.get("root")), merkle.get("proof")
        nodes = [_hex32(n) for n in proof] if isinstance(proof, list) else [None]
        if leaf is None or root is None or any(n is None for n in nodes):
            return Check(name, "invalid", "Merkle 叶子、根或证明路径格式错误")
        if leaf != leaf_hash(rh):
            return Check(name, "invalid", "Merkle 叶子不等于 keccak256(记录哈希)")
        if not verify_proof(leaf, [n for n in nodes if n is not None], root):
            return Check(name, "invalid", "Merkle 证明无法由叶子推导出证书所载的根")
        return Check(name, "valid", f"Merkle 证明有效（{len(nodes)} 层），叶子属于根 {to_hex(root)}")

    # ------------------------------------------------------------------ chain checks

    def _guarded(self, name: str, check: Any, *, invalid_on_missing_contract: bool = False) -> Check:
        if self.payload is None:
            return Check(name, "skipped", "无证书数据")
        if self.chain is None:
            status: CheckStatus = "invalid" if invalid_on_missing_contract else "skipped"
            return Check(name, status, self.no_chain_reason or "未提供区块链节点")
        if self.unavailable is not None:
            return Check(name, "error", f"{_UNAVAILABLE}：{self.unavailable}")
        try:
            result: Check = check(name)
        except ChainUnavailableError as exc:
            self.unavailable = exc
            return Check(name, "error", f"{_UNAVAILABLE}：{exc}")
        except ContractNotFoundError as exc:
            status = "invalid" if invalid_on_missing_contract else "error"
            return Check(name, status, f"证书所载合约地址上没有相应合约：{exc}")
        except ChainError as exc:
            return Check(name, "error", f"读取链上数据失败：{exc}")
        return result

    def _anchored_on_chain(self, name: str) -> Check:
        assert self.payload is not None and self.chain is not None
        chain = self.chain
        anchor = self.payload.get("anchor")
        root = _hex32(_get(self.payload, "merkle", "root"))
        if not isinstance(anchor, dict) or root is None:
            return Check(name, "invalid", "证书缺少上链信息或 Merkle 根")
        problems: list[str] = []
        contracts = anchor.get("contracts") if isinstance(anchor.get("contracts"), dict) else {}
        for label, expected in (
            ("ConsortiumRegistry", chain.registry_address),
            ("TraceAnchor", chain.anchor_address),
        ):
            claimed = contracts.get(label)
            if not _is_address(claimed) or checksum_address(claimed) != expected:
                problems.append(f"证书所载 {label} 地址 {claimed} 不是所核验的合约 {expected}")
        if problems:
            return Check(name, "invalid", "；".join(problems))
        if not chain.has_code(chain.registry_address) or not chain.has_code(chain.anchor_address):
            return Check(name, "invalid", "证书所载合约地址上没有部署合约")
        if chain.anchor_registry() != chain.registry_address:
            return Check(
                name,
                "invalid",
                f"TraceAnchor {chain.anchor_address} 并不隶属于注册合约 {chain.registry_address}",
            )
        chain_id = chain.chain_id()
        if anchor.get("chain_id") != chain_id:
            problems.append(f"证书所载链 ID {anchor.get('chain_id')} 与节点的链 ID {chain_id} 不符")
        batch = chain.batch(root)
        if batch is None:
            return Check(name, "invalid", "；".join([*problems, f"Merkle 根 {to_hex(root)} 未在链上锚定"]))
        self.facts.batch = batch
        agency = _get(anchor, "agency", "address")
        if not _is_address(agency) or checksum_address(agency) != batch.agency:
            problems.append(f"该根由 {batch.agency} 锚定，而非证书所称的机构 {agency}")
        if anchor.get("block_number") != batch.block_number:
            problems.append(f"该根锚定于区块 {batch.block_number}，而非证书所称的区块 {anchor.get('block_number')}")
        claimed_time = _epoch(anchor.get("block_time"))
        if claimed_time != batch.timestamp:
            problems.append(f"出块时间与链上记录（{_iso(batch.timestamp)}）不符")
        problems.extend(self._anchor_transaction(anchor.get("tx_hash"), batch))
        if problems:
            return Check(name, "invalid", "；".join(problems))
        return Check(
            name,
            "valid",
            f"Merkle 根已于区块 {batch.block_number}（{_iso(batch.timestamp)}）由 {batch.agency} "
            f"锚定在链 {chain_id} 的 TraceAnchor {chain.anchor_address}",
        )

    def _anchor_transaction(self, tx_hash: Any, batch: AnchoredBatch) -> list[str]:
        assert self.chain is not None
        if not isinstance(tx_hash, str) or _hex32(tx_hash) is None:
            return ["上链交易哈希缺失或格式错误"]
        tx = self.chain.anchor_transaction(tx_hash)
        if tx is None:
            return [f"链上找不到上链交易 {tx_hash}"]
        if not tx.succeeded or tx.block_number != batch.block_number or (batch.root, batch.agency) not in tx.anchored:
            return [f"上链交易 {tx_hash} 并未锚定该 Merkle 根"]
        return []

    def _agency_membership(self, name: str) -> Check:
        assert self.payload is not None and self.chain is not None
        batch = self.facts.batch
        if batch is None:
            return Check(name, "skipped", "Merkle 根未在链上锚定，无从核对机构资格")
        if not self.chain.was_member_at(batch.agency, batch.block_number):
            return Check(name, "invalid", f"{batch.agency} 在区块 {batch.block_number} 时不是联盟的有效成员")
        entry = self.chain.member(batch.agency)
        claimed = _get(self.payload, "anchor", "agency")
        claimed = claimed if isinstance(claimed, dict) else {}
        problems = [
            f"证书所称机构{label}“{claimed.get(key)}”与链上登记的“{value}”不符"
            for key, label, value in (("name", "名称", entry.name), ("code", "代码", entry.code))
            if claimed.get(key) != value
        ]
        if problems:
            return Check(name, "invalid", "；".join(problems))
        now = "（现仍为成员）" if entry.active and entry.roles & 1 else "（现已不是成员，历史锚定仍有效）"
        return Check(name, "valid", f"{entry.name}（{entry.code}）在锚定区块 {batch.block_number} 时是联盟成员{now}")

    # ------------------------------------------------------------------ pdf_signature

    def _pdf_signature(self) -> Check:
        name = "pdf_signature"
        pdf = self.pdf
        if pdf is None:
            return Check(name, "skipped", "仅核验证书数据，未提供 PDF")
        # The PDF reader explains its own findings (English / Chinese); attachment problems belong to
        # payload_integrity. The booleans are re-checked in case a finding came without an explanation.
        problems = [p for p in pdf.problems if ATTACHMENT_NAME not in p and "attachment" not in p]
        if not problems:
            if pdf.signature_count != 1:
                problems.append(f"PDF 应恰有 1 个签名，实有 {pdf.signature_count} 个")
            if not pdf.signature_intact:
                problems.append("签名校验失败（文件在签名后被改动或签名损坏）")
            if not pdf.covers_entire_file:
                problems.append("签名未覆盖整个文件（签名后有增量更新）")
            if self.require_ca_chain and not pdf.chained_to_trust_root:
                problems.append("签名证书未链接到所给的联盟 CA")
        fp = self._signer_fingerprint()
        if fp is None:
            problems.append("无法取得签名证书指纹")
        claimed = _get(self.payload, "issuer", "certificate_fingerprint_sha256")
        if fp is not None and isinstance(claimed, str) and claimed.lower().removeprefix("0x") != fp.hex():
            problems.append("签名证书指纹与证书所载签发方指纹不符")
        if fp is not None:
            if self.chain is None:
                problems.append(f"无法核对签名证书是否在链上登记：{self.no_chain_reason}")
            else:
                registered = self._guarded(name, lambda _n: self._issuer_registered(fp))
                if registered.status == "error" and not problems:
                    return registered
                if registered.status != "valid":
                    problems.append(registered.message)
        if problems:
            return Check(name, "invalid", "；".join(problems))
        ca = "，并链接到联盟 CA" if self.require_ca_chain else "（未提供 CA，未核对证书链）"
        return Check(
            name, "valid", f"PDF 签名完整且覆盖整个文件{ca}；签名证书指纹 {fp.hex()[:16]}… 已在链上登记为签发方"
        )

    def _issuer_registered(self, fp: bytes) -> Check:
        assert self.chain is not None
        if not self.chain.is_issuer_fingerprint(fp):
            return Check("pdf_signature", "invalid", "签名证书指纹未在链上登记为有效签发方（ISSUER）")
        issuer = _get(self.payload, "issuer", "address")
        if _is_address(issuer) and self.chain.issuer_fingerprint(issuer) != fp:
            return Check("pdf_signature", "invalid", f"签名证书指纹不属于证书所称的签发方 {issuer}")
        return Check("pdf_signature", "valid", "")

    # ------------------------------------------------------------------ not_revoked / not_recalled

    def _not_revoked(self, name: str) -> Check:
        assert self.chain is not None
        rh = self.facts.record_hash
        if rh is None:
            return Check(name, "skipped", "缺少记录哈希")
        # Only a revocation under the certificate's own root counts: the contract checks the revoker against the
        # root it is given, and any member can anchor a root of its own that contains this (public) leaf.
        root = _hex32(_get(self.payload, "merkle", "root"))
        if root is None:
            return Check(name, "skipped", "缺少批次根")
        fact = self.chain.revocation(root, rh)
        if not fact.revoked:
            return Check(name, "valid", "记录未被撤销")
        self.facts.revocation = RecordRevocation(to_hex(rh), fact.timestamp, to_hex(root), fact.reason)
        return Check(name, "invalid", f"记录已于 {_iso(fact.timestamp)} 被撤销，原因：{fact.reason or '未说明'}")

    def _not_recalled(self, name: str) -> Check:
        assert self.payload is not None and self.chain is not None
        lots = self._lots()
        own = next((code for code, relation in lots.items() if relation == "self"), None)
        facts = self.chain.recalls(trace_code_hash(code) for code in lots)
        for code, relation in lots.items():
            fact = facts[trace_code_hash(code)]
            if fact.recalled:
                self.facts.recalls.append(LotRecall(code, relation, fact.timestamp, fact.recalled_by, fact.reason))
        if self.facts.recalls:
            named = "；".join(
                f"{_ROLE_LABELS[r.relation]} {r.trace_code} 已于 {_iso(r.recalled_at)} 被召回，"
                f"原因：{r.reason or '未说明'}"
                for r in self.facts.recalls
            )
            return Check(name, "invalid", named)
        if own is None:
            return Check(name, "error", "证书未公开本批次追溯码，无法核对本批次是否被召回")
        return Check(name, "valid", f"本批次及 {len(lots) - 1} 个上游批次均未被召回")

    # ------------------------------------------------------------------ public fields

    def _public_certificate(self) -> dict[str, Any]:
        p = self.payload
        if p is None:
            return {}
        record = p.get("record") if isinstance(p.get("record"), dict) else {}
        hidden = p.get("hidden_fields") if isinstance(p.get("hidden_fields"), dict) else {}
        issuer = p.get("issuer") if isinstance(p.get("issuer"), dict) else {}
        return {
            "type": p.get("type"),
            "certificate_id": p.get("certificate_id"),
            "certificate_hash": p.get("certificate_hash"),
            "record_hash": p.get("record_hash"),
            "issued_at": p.get("issued_at"),
            "trace_code": record.get("trace_code"),
            "record": record,
            "hidden_fields": sorted(hidden),
            "merkle_root": _get(p, "merkle", "root"),
            "issuer": {k: issuer.get(k) for k in ("name", "code", "address", "certificate_fingerprint_sha256")},
            "upstream_trace_codes": _get(p, "lineage", "upstream_trace_codes") or [],
        }

    def _public_anchor(self) -> dict[str, Any] | None:
        anchor = _get(self.payload, "anchor")
        if not isinstance(anchor, dict):
            return None
        agency = anchor.get("agency") if isinstance(anchor.get("agency"), dict) else {}
        return {
            "tx_hash": anchor.get("tx_hash"),
            "block_number": anchor.get("block_number"),
            "block_time": anchor.get("block_time"),
            "agency": {k: agency.get(k) for k in ("name", "code", "address")},
            "chain_id": anchor.get("chain_id"),
            "contracts": {
                "ConsortiumRegistry": self.chain.registry_address
                if self.chain
                else _get(anchor, "contracts", "ConsortiumRegistry"),
                "TraceAnchor": self.chain.anchor_address if self.chain else _get(anchor, "contracts", "TraceAnchor"),
            },
        }


# ---------------------------------------------------------------------------------------------------- helpers


def _recompute_record_hash(
    record: dict[str, Any], salts: dict[str, Any], hidden: dict[str, Any]
) -> tuple[bytes | None, str]:
    hidden_hashes: dict[str, bytes] = {}
    for path, value in hidden.items():
        digest = _hex32(value)
        if digest is None:
            return None, f"隐藏字段 {path} 的哈希格式错误"
        hidden_hashes[path] = digest
    try:
        computed = record_hash_from_disclosure(record, salts, hidden_hashes)
    except (ValueError, CanonicalizationError) as exc:  # CanonicalizationError is a ValueError too
        return None, str(exc)
    extra = set(salts) - _disclosed_paths(record)
    if extra:
        return None, f"多余的盐值：{', '.join(sorted(extra))}"
    return computed, ""


def _disclosed_paths(record: dict[str, Any]) -> set[str]:
    out: set[str] = set()

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(v, f"{path}.{k}" if path else k)
        elif isinstance(value, list | tuple) and value:
            for i, v in enumerate(value):
                walk(v, f"{path}.{i}")
        elif value is not None or path:
            out.add(path)

    walk(record, "")
    return out


def _get(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _hex32(value: Any) -> bytes | None:
    try:
        return from_hex(value.lower(), 32) if isinstance(value, str) else None
    except ValueError:
        return None


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def _is_address(value: Any) -> bool:
    return isinstance(value, str) and _is_address_text(value)


@lru_cache(maxsize=4096)
def _is_address_text(value: str) -> bool:
    return bool(Web3.is_address(value))


def _epoch(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return math.floor(moment.timestamp())
    return None


def _iso(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).isoformat().replace("+00:00", "Z")
