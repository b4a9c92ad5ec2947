"""Fixtures of the web suite: the real certificate service (uvicorn in a thread) on real Anvil, the shared
sample records (plus personal data and extensions to prove they never leak) submitted through AgencyClient,
and helpers to download, tamper with and upload certificate PDFs.

Loaded from tests/web/conftest.py; builds on tests/service/certificates_fixtures.py (imported, not edited).
"""

from __future__ import annotations

import copy
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from certificate_service.pdf import render_certificate, sign_certificate
from certificate_service.pki import IssuerPKI
from certificate_service.services.certificates import certificate_hash, embedded_payload
from tests.service.certificates_fixtures import CertWorld
from trace_sdk.client.agency import SubmitReceipt

__all__ = [
    "ARTIFACTS",
    "RETAIL_RECORD",
    "WebWorld",
    "appended",
    "countersigned",
    "flipped",
    "incremental_update",
    "payload_of",
    "resigned",
    "sample_records",
    "web_world",
    "web_world_factory",
    "with_certificate_hash",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_RECORDS = REPO_ROOT.parent / "shared" / "data" / "sample-records.jsonl"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "web"

IMPORT_LOT = "DEMOI918983889200001"
"""Imported frozen pork at Yangshan customs; shipped to two wholesale lots, then to two supermarkets."""
WHOLESALE_LOT = "DEMOW698611480900004"
RETAIL_LOT = "DEMOS169526530500008"
RETAIL_RECORD = "DEMO-r000009"
"""联华超市 retail sale of WHOLESALE_LOT, itself received from IMPORT_LOT (two hops downstream)."""
UNRELATED_RECORD = "DEMO-r000016"
"""Domestic pork slaughtering: no link to the imported pork."""

EXTENSION_SECRET = "EXT-SECRET-7781"
RETAIL_CONTACT = {"person": "赵秘密", "phone": "13912345678"}


def sample_records() -> list[dict[str, Any]]:
    """The 34 shared sample records, with personal data and extensions added to a few of them."""
    records = [json.loads(line) for line in SAMPLE_RECORDS.read_text(encoding="utf-8").splitlines() if line.strip()]
    for record in records:
        if record["record_id"] == RETAIL_RECORD:
            record["contact"] = dict(RETAIL_CONTACT)
            record["extensions"] = {"internal_note": EXTENSION_SECRET, "shelf": "B-12"}
        elif record["record_id"] == "DEMO-r000002":
            record["extensions"] = {"customs_broker": "EXT-BROKER-5521"}
    return records


def _private_values(value: Any) -> Iterator[str]:
    """Every scalar value under ``value``, as text."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _private_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _private_values(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


@dataclass
class WebWorld:
    """A running service with records submitted; helpers for the public endpoints."""

    world: CertWorld
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    receipts: dict[str, SubmitReceipt] = field(default_factory=dict)

    @property
    def http(self) -> httpx.Client:
        """HTTP client on the service."""
        return self.world.http

    @property
    def url(self) -> str:
        """Base URL of the service."""
        return self.world.service_url

    def submit(self, record_ids: Iterable[str] | None = None) -> list[SubmitReceipt]:
        """Submit (some of) the sample records through AgencyClient and let the indexer catch up."""
        wanted = set(record_ids) if record_ids is not None else None
        records = [r for r in sample_records() if wanted is None or r["record_id"] in wanted]
        receipts = self.world.submit(records)
        self.records.update({r["record_id"]: r for r in records})
        self.receipts.update({r.record_id: r for r in receipts})
        self.world.index()
        return receipts

    def certificate_id(self, record_id: str) -> str:
        """The certificate id of a submitted record."""
        return self.receipts[record_id].certificate_id

    def enterprise_of(self, record_id: str) -> tuple[str, str]:
        """(USCC, name) of the enterprise a record names."""
        enterprise = self.records[record_id]["enterprise"]
        return enterprise["uscc"], enterprise["name"]

    def pdf(self, record_id: str, hide: str | None = None) -> bytes:
        """Download a record's certificate PDF as its enterprise (stored once per variant)."""
        response = self.http.get(
            f"/api/v1/certificates/{self.certificate_id(record_id)}/pdf",
            params={"hide": hide} if hide else None,
            headers=self.world.auth(self.enterprise_of(record_id)),
        )
        assert response.status_code == 200, response.text
        return response.content

    def verify(self, query: str) -> httpx.Response:
        """``GET /api/v1/verify/{query}``."""
        return self.http.get(f"/api/v1/verify/{query}")

    def upload(self, pdf: bytes, *, path: str = "/api/v1/verify") -> httpx.Response:
        """Upload a PDF to the API (or a page) as multipart field ``file``."""
        return self.http.post(path, files={"file": ("certificate.pdf", pdf, "application/pdf")})

    def issuer_pki(self) -> IssuerPKI:
        """The service's own issuer key (a forger with the genuine key still fails the payload checks)."""
        return IssuerPKI.load_or_create(self.world.data_dir)

    def private_values(self) -> set[str]:
        """Every value that must never appear publicly: contact, extensions and document numbers."""
        values: set[str] = set()
        for record in self.records.values():
            values.update(_private_values(record.get("contact")))
            values.update(_private_values(record.get("extensions")))
            values.update(str(d["number"]) for d in record.get("documents", []))
        return {v for v in values if len(v) >= 4 or (len(v) >= 2 and not v.isascii())}

    def counterparty_usccs(self) -> set[str]:
        """Every counterparty USCC of the submitted records."""
        return {r["counterparty"]["uscc"] for r in self.records.values() if r.get("counterparty", {}).get("uscc")}

    def all_usccs(self) -> set[str]:
        """Every USCC the submitted records hold."""
        return self.counterparty_usccs() | {r["enterprise"]["uscc"] for r in self.records.values()}


def assert_private_data_absent(world: WebWorld, text: str, *, allowed_usccs: Iterable[str] = ()) -> None:
    """No contact, extension or document-number value, and no unmasked USCC but ``allowed_usccs``, in ``text``."""
    leaked = sorted(v for v in world.private_values() if v in text)
    assert not leaked, f"private values in a public answer: {leaked}"
    shown = sorted(u for u in world.all_usccs() - set(allowed_usccs) if u in text)
    assert not shown, f"unmasked USCCs in a public answer: {shown}"
    assert '"contact":' not in text and '"extensions":' not in text


# ---------------------------------------------------------------------------------------------------- tampering


def payload_of(pdf: bytes) -> dict[str, Any]:
    """The payload attached to a certificate PDF."""
    return dict(json.loads(embedded_payload(pdf)))


def with_certificate_hash(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with its certificate hash recomputed."""
    sealed = copy.deepcopy(payload)
    sealed["certificate_hash"] = certificate_hash(sealed)
    return sealed


def resigned(payload: dict[str, Any], pki: IssuerPKI, verify_url: str = "http://127.0.0.1/verify/X") -> bytes:
    """A fresh certificate PDF for ``payload`` rendered and signed with ``pki``."""
    return sign_certificate(render_certificate(payload, verify_url), pki)


def _contents_span(pdf: bytes) -> tuple[int, int]:
    """Byte span of the signature's /Contents hex string."""
    start = pdf.index(b"/Contents <")
    return start, pdf.index(b">", start + len(b"/Contents <")) + 1


def flipped(pdf: bytes, count: int = 12) -> list[tuple[int, bytes]]:
    """Copies of ``pdf`` with one byte flipped each, spread over the file, never inside the signature value."""
    start, end = _contents_span(pdf)
    positions = [int(len(pdf) * (i + 0.5) / count) for i in range(count)]
    positions = [p if not start <= p < end else end + (p - start) % 64 for p in positions]
    positions += [0, 5, start - 1, end, len(pdf) - 2]  # the header, around the signature, the %%EOF
    out = []
    for position in sorted(set(positions)):
        tampered = bytearray(pdf)
        tampered[position] ^= 0x01
        out.append((position, bytes(tampered)))
    return out


def appended(pdf: bytes) -> bytes:
    """``pdf`` with bytes appended after the signed revision."""
    return pdf + b"\n% appended after signing\n"


def incremental_update(pdf: bytes) -> bytes:
    """``pdf`` with an incremental update adding an object after the signature."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    writer.add_object(generic.DictionaryObject({generic.NameObject("/Note"): generic.TextStringObject("改")}))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def countersigned(pdf: bytes, pki: IssuerPKI) -> bytes:
    """``pdf`` with a second signature by ``pki`` in an incremental update."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner

    signer = PdfSigner(PdfSignatureMetadata(field_name="Countersignature"), signer=pki.signer)
    return bytes(signer.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf))).getvalue())


def text_of(response: httpx.Response) -> str:
    """A response body as text, with JSON unicode escapes resolved."""
    body = response.text
    return json.dumps(response.json(), ensure_ascii=False) if body.startswith("{") else body


def strip_tags(html: str) -> str:
    """The visible text of an HTML page (roughly)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# ---------------------------------------------------------------------------------------------------- fixtures

WebWorldFactory = Callable[..., WebWorld]


@pytest.fixture
def web_world_factory(cert_world_factory: Callable[..., CertWorld], monkeypatch: pytest.MonkeyPatch) -> WebWorldFactory:
    """Build a service (issuer registered) with an optional low copied-code warning threshold.

    ``freshness_s`` is the service's VERIFY_FRESHNESS_S; 0 by default here, because these tests index a
    revocation or recall and verify at once (the default of 0.5 s is covered by its own test).
    """

    def build(*, warn_count: int | None = None, freshness_s: float = 0.0) -> WebWorld:
        """A started world."""
        if warn_count is not None:
            monkeypatch.setenv("TRACECHAIN_VERIFY_WARN_COUNT", str(warn_count))
        monkeypatch.setenv("TRACECHAIN_VERIFY_FRESHNESS_S", str(freshness_s))
        world = cert_world_factory()
        monkeypatch.delenv("TRACECHAIN_VERIFY_WARN_COUNT", raising=False)
        monkeypatch.delenv("TRACECHAIN_VERIFY_FRESHNESS_S", raising=False)
        return WebWorld(world)

    return build


@pytest.fixture
def web_world(web_world_factory: WebWorldFactory) -> WebWorld:
    """A service with every sample record submitted and indexed."""
    world = web_world_factory()
    world.submit()
    return world
