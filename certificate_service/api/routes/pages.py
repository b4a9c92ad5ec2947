"""Server-rendered verification pages (zh-CN, phone first, no external resources): search, QR target, upload.

Everything is escaped by Jinja2's autoescape; the pages load only this service's ``/static`` files and send a
Content-Security-Policy that forbids anything else. What a page shows is the public API answer (no
``contact``, ``extensions`` or document numbers; counterparty USCC masked) plus desensitised trace timelines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader

from certificate_service.api.deps import ContextDep, SessionDep
from certificate_service.api.routes.verify import MULTIPART_SLACK
from certificate_service.limits import limit_path
from certificate_service.pdf import labels
from certificate_service.services.verification import MAX_UPLOAD_BYTES, verification_page

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "router", "static_files"]

PACKAGE_DIR = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"

router = APIRouter(tags=["pages"], include_in_schema=False)
static_files = StaticFiles(directory=STATIC_DIR)
"""Mount at ``/static`` (CSS and JS of the pages)."""
limit_path("/verify", MAX_UPLOAD_BYTES + MULTIPART_SLACK)

_CST = timezone(timedelta(hours=8), "CST")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

VERDICTS: Mapping[str, tuple[str, str, str]] = {
    "valid": ("验证通过", "ok", "证书真实有效：记录已上链存证，内容未被篡改，未被撤销或召回。"),
    "revoked": ("已撤销", "warn", "证书真实，但该记录已被上链机构撤销，不再作为有效凭证。"),
    "recalled": ("已召回", "danger", "该批次或其上游批次已被监管部门召回，请停止销售和食用。"),
    "invalid": ("验证失败", "danger", "证书不可信：内容、签名或上链信息未通过核验，可能是伪造或被篡改的证书。"),
    "not_found": ("未找到", "muted", "没有找到对应的证书，请核对证书编号或哈希。"),
    "undecided": ("暂时无法验证", "muted", "暂时无法连接区块链节点完成核验，请稍后再试。"),
}
"""Status (or ``undecided``) -> (verdict text, style, explanation)."""

CHECK_LABELS: Mapping[str, str] = {
    "payload_integrity": "证书数据完整性",
    "merkle_proof": "Merkle 存在性证明",
    "anchored_on_chain": "区块链锚定",
    "agency_membership": "上链机构资格",
    "pdf_signature": "PDF 数字签名",
    "not_revoked": "记录未被撤销",
    "not_recalled": "批次未被召回",
    "registry_match": "与平台登记一致",
}

CHECK_STATUS: Mapping[str, str] = {"valid": "通过", "invalid": "未通过", "error": "无法核验", "skipped": "不适用"}

_TABLES: Mapping[str, Mapping[str, str]] = {
    "biz_step": labels.BIZ_STEP,
    "category": labels.CATEGORY,
    "disposition": labels.DISPOSITION,
    "document_type": labels.DOCUMENT_TYPE,
    "document_result": labels.DOCUMENT_RESULT,
    "role": labels.ENTERPRISE_ROLE,
    "event_type": labels.EVENT_TYPE,
    "check": CHECK_LABELS,
    "check_status": CHECK_STATUS,
}


def label(table: str, value: Any) -> str:
    """The Chinese label of an enum ``value`` (the value itself when unknown, empty for None)."""
    if value is None:
        return ""
    return _TABLES.get(table, {}).get(str(value), str(value))


def cst(value: Any, with_seconds: bool = False) -> str:
    """An ISO 8601 time shown in Beijing time (``2026-03-01 06:54``); other text as it is."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(_CST)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")


def region(code: Any) -> str:
    """The name of a Shanghai 行政区划代码, or the code."""
    return labels.SHANGHAI_REGIONS.get(str(code), str(code)) if code else ""


def zh(message: Any) -> str:
    """The Chinese half of the verifier's bilingual ``english / 中文`` findings (other text as it is)."""
    parts = []
    for part in str(message or "").split("；"):
        english, separator, chinese = part.rpartition(" / ")
        parts.append(chinese if separator and english and _CJK.search(chinese) else part)
    return "；".join(parts)


def grouped_id(certificate_id: Any) -> str:
    """``7K2M9QX4HRPW3NV8YJ0C`` -> ``7K2M9-QX4HR-PW3NV-8YJ0C`` (as printed on certificates)."""
    text = str(certificate_id or "")
    return "-".join(text[i : i + 5] for i in range(0, len(text), 5)) if len(text) == 20 else text


_env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, trim_blocks=True, lstrip_blocks=True)
_env.globals.update(label=label, VERDICTS=VERDICTS, max_upload_mb=MAX_UPLOAD_BYTES // (1024 * 1024))
_env.filters.update(cst=cst, region=region, grouped_id=grouped_id, zh=zh)
templates = Jinja2Templates(env=_env)


def _render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """A template response with the pages' security headers."""
    root = request.scope.get("root_path", "").rstrip("/")
    return templates.TemplateResponse(
        request,
        name,
        {"root": root, "max_upload_bytes": MAX_UPLOAD_BYTES, **context},
        status_code=status_code,
        headers=_HEADERS,
    )


@router.get("/verify", response_class=HTMLResponse)
def search_page(request: Request, q: str | None = None) -> Response:
    """The search box (id or hash) and the PDF upload form; ``?q=`` redirects to the answer page."""
    if q and q.strip():
        root = request.scope.get("root_path", "").rstrip("/")
        return RedirectResponse(f"{root}/verify/{quote(q.strip()[:200], safe='')}", status_code=303)
    return _render(request, "verify_search.html", {})


@router.get("/verify/{query}", response_class=HTMLResponse)
def result_page(query: str, request: Request, context: ContextDep, session: SessionDep) -> HTMLResponse:
    """The QR target: the verdict for a certificate id (or hash), its trace and its anchoring; counts it."""
    page = verification_page(session=session, context=context, query=query)
    return _render(request, "verify_result.html", {"page": page, "query": query}, page.http_status)


@router.post("/verify", response_class=HTMLResponse)
def upload_page(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    file: Annotated[UploadFile | None, File()] = None,
) -> HTMLResponse:
    """The verdict for an uploaded certificate PDF."""
    data = file.file.read(MAX_UPLOAD_BYTES + 1) if file is not None else b""
    page = verification_page(session=session, context=context, pdf=data)
    return _render(request, "verify_result.html", {"page": page, "uploaded": True}, page.http_status)
