"""Render the 食品安全追溯信息区块链证书（上链凭证） as an A4 PDF with reportlab.

One flowing layout (a continuation page only when a record is unusually long), every glyph from an
embedded TrueType subset of WenQuanYi Zen Hei, a vector QR code pointing at the verification page, and the
payload's RFC 8785 bytes attached as ``certificate.json`` so the PDF is self-contained evidence.

Speed and size notes (pure-Python reportlab, no rl-accel): the font is parsed once per process. Every
document starts from a copy of one font state in which a fixed *core* character set (common ASCII plus the
wording printed on every certificate) fills font subset 0, closed, so that subset's objects (TrueType
program, ToUnicode map, descriptor, font dictionary) are built, compressed and formatted once per process
and reused verbatim with only their object numbers filled in; the characters particular to a record go
into a small per-document subset, and core-only text is encoded with one ``str.translate``. Text is written
as content-stream operators directly (reportlab still owns the document, fonts and resources); the QR code
is one path in module units, encoded with int-based bit packing and Reed-Solomon, the fixed patterns of
each symbol version built once and the data modules put in place by one gather, all reproducing
reportlab's encoder bit for bit.

Rendering is deterministic (same payload and URL, same bytes) and safe to run in worker threads.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import hashlib
import itertools
import operator
import os
import re
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Any, Final

from reportlab import rl_config
from reportlab.graphics.barcode import qrencoder
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfdoc, pdfmetrics
from reportlab.pdfbase.ttfonts import SUBSETN, TTFont, makeToUnicodeCMap
from reportlab.pdfgen.canvas import Canvas

from certificate_service.pdf.labels import (
    BIZ_STEP,
    CATEGORY,
    DISPOSITION,
    DOCUMENT_RESULT,
    DOCUMENT_TYPE,
    ENTERPRISE_ROLE,
    EVENT_TYPE,
    SHANGHAI_REGIONS,
    field_label,
)
from trace_sdk.protocol.canonical import canonicalize, format_number

__all__ = [
    "ATTACHMENT_NAME",
    "CERTIFICATE_TITLE",
    "FONT_PATH",
    "register_fonts",
    "render_certificate",
]

CERTIFICATE_TITLE: Final = "食品安全追溯信息区块链证书（上链凭证）"
ATTACHMENT_NAME: Final = "certificate.json"
FONT_PATH: Final = os.environ.get("TRACECHAIN_CJK_FONT", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
"""A TrueType (glyf) CJK font or collection; reportlab cannot embed CFF-flavoured fonts such as Noto CJK."""

_FONT: Final = "TraceChainSans"

_PAGE_W, _PAGE_H = A4
_MARGIN_X: Final = 44.0
_TOP: Final = _PAGE_H - 44.0
_BOTTOM: Final = 76.0
_CONTENT_W: Final = _PAGE_W - 2 * _MARGIN_X

# Colours as fill operands ("r g b").
_INK: Final = "0.1 0.1 0.1"
_MUTED: Final = "0.357 0.4 0.459"
_ACCENT: Final = "0.122 0.306 0.475"
_RULE: Final = "0.788 0.827 0.875"
_BAND: Final = "0.933 0.953 0.973"
_SEAL: Final = "0.698 0.133 0.133"

_HIDDEN_VALUE: Final = "（已隐藏）"
_FOOTER_NOTE: Final = (
    "验证：扫描二维码或访问下方网址；亦可仅凭本 PDF（内含 certificate.json 与数字签名）、"
    "联盟链节点和联盟 CA 证书独立验证。"
)
# ASCII that ids, hashes, addresses, dates and the English captions use; it opens the core subset.
_CORE_ASCII: Final = "0123456789abcdefABCDEFxX.-:/()+,|ghijklmnopqrstuvwyzGHIJKLMNOPQRSTUVWYZ"
_CORE_SIZE: Final = 254
"""At most this many characters fit subset 0 besides .notdef (code 0) and the space kept at code 32."""

_FONT_LOCK = threading.Lock()
_font: _CachingTTFont | None = None
_core_state: TTFont.State | None = None
"""The font state every document starts from (see :func:`_start_document_font_state`)."""
_core_set: frozenset[str] = frozenset()
_core_codes: dict[int, str] = {}
"""``str.translate`` table from each core character to its code in subset 0 (the same in every document)."""


def register_fonts() -> None:
    """Load and register the CJK font once per process (parsing the 17 MB collection costs ~0.2 s)."""
    global _font, _core_state, _core_set, _core_codes
    if _font is not None:
        return
    with _FONT_LOCK:
        if _font is not None:
            return
        font = _CachingTTFont(_FONT, FONT_PATH, subfontIndex=0, asciiReadable=False)
        pdfmetrics.registerFont(font)
        _ADVANCES.update((chr(code), width) for code, width in font.face.charWidths.items())
        _ADVANCES.default = float(font.face.defaultWidth)
        # Page streams: Flate only. ASCII85 on top (reportlab's default) makes them 25 % larger and, without
        # the optional rl-accel C extension, costs more time than anything else on the page.
        rl_config.useA85 = 0
        core_text = _core_characters(font)
        _core_state = _core_font_state(font, core_text)
        _core_set = frozenset(core_text) | {" "}
        _core_codes = {ord(char): chr(_core_state.assignments[ord(char)]) for char in _core_set}
        _font = font


def render_certificate(payload: Mapping[str, Any], verify_url: str) -> bytes:
    """Render one certificate PDF (unsigned) for ``payload``, with a QR code encoding ``verify_url``."""
    register_fonts()
    assert _font is not None
    attachment = canonicalize(dict(payload))
    buffer = BytesIO()
    canvas = Canvas(
        buffer, pagesize=A4, pageCompression=1, invariant=1, lang="zh-CN", initialFontName=_FONT, initialFontSize=9
    )
    _start_document_font_state(_font, canvas._doc)
    _set_metadata(canvas, payload, attachment)
    _Layout(canvas, _font, payload, verify_url).draw()
    _attach_payload(canvas, attachment)
    canvas.save()
    return buffer.getvalue()


# ----------------------------------------------------------------------------------------------- fonts


@dataclass(frozen=True, slots=True)
class _SubsetObjects:
    """The formatted PDF objects of one font subset, with slots where the object references go."""

    font_file: bytes
    to_unicode: bytes
    descriptor: bytes
    """With :data:`_FONT_FILE_SLOT` for the /FontFile2 reference."""
    font: bytes
    """With :data:`_TO_UNICODE_SLOT` and :data:`_DESCRIPTOR_SLOT` for those references."""


# Stand-ins for object references in a subset's formatted objects (which otherwise hold no NUL byte).
_FONT_FILE_SLOT: Final = b"\0FontFile2\0"
_TO_UNICODE_SLOT: Final = b"\0ToUnicode\0"
_DESCRIPTOR_SLOT: Final = b"\0FontDescriptor\0"


class _CachingTTFont(TTFont):
    """A reportlab TTFont whose embedded subsets are memoised by their character list.

    Byte for byte the output of :meth:`TTFont.addObjects`; the four objects of a subset seen before (the
    compressed TrueType program, the ToUnicode CMap, the descriptor and the font dictionary) are reused as
    formatted bytes, with only the object numbers filled in per document.
    """

    _CACHE_LIMIT = 32

    def __init__(self, name: str, filename: str, *, subfontIndex: int, asciiReadable: bool) -> None:
        super().__init__(name, filename, subfontIndex=subfontIndex, asciiReadable=asciiReadable)
        self._subset_cache: dict[tuple[str, int, tuple[int, ...]], _SubsetObjects] = {}
        self._tables: dict[str, bytes] = {}
        self._subset_lock = threading.Lock()
        face = self.face
        original_get_table = face.get_table

        def get_table(tag: str) -> bytes:
            # reportlab copies whole tables (10 MB of glyf) for every subset; keep one copy instead.
            table = self._tables.get(tag)
            if table is None:
                table = self._tables[tag] = original_get_table(tag)
            return table

        face.get_table = get_table

    def _subset_objects(self, doc: Any, internal_name: str, n: int, subset: list[int]) -> _SubsetObjects:
        key = (internal_name, n, tuple(subset))
        objects = self._subset_cache.get(key)
        if objects is None:
            objects = self._format_subset(doc, internal_name, n, subset)
            if len(self._subset_cache) >= self._CACHE_LIMIT:
                self._subset_cache.clear()
            self._subset_cache[key] = objects
        return objects

    def _format_subset(self, doc: Any, internal_name: str, n: int, subset: list[int]) -> _SubsetObjects:
        """Build subset ``n`` as reportlab's ``TTFont.addObjects`` does, with slots for the references."""
        face = self.face
        base_name = (b"".join((SUBSETN(n), b"+", face.name, face.subfontNameX))).decode("pdfdoc")
        with self._subset_lock:  # makeSubset seeks and reads the shared face: one at a time
            program = face.makeSubset(subset)
        level = 9 if n == 0 else 6  # the core subset is compressed once and reused: make it small
        font_file = pdfdoc.PDFStream(
            pdfdoc.PDFDictionary({"Length1": len(program), "Filter": _RawPDF(b"/FlateDecode")}),
            zlib.compress(program, level),
            filters=[],
        )
        to_unicode = pdfdoc.PDFStream(
            pdfdoc.PDFDictionary({"Filter": _RawPDF(b"/FlateDecode")}),
            zlib.compress(makeToUnicodeCMap(base_name, subset).encode("latin-1"), level),
            filters=[],
        )
        descriptor = pdfdoc.PDFDictionary(
            {
                "Type": _RawPDF(b"/FontDescriptor"),
                "Ascent": face.ascent,
                "CapHeight": face.capHeight,
                "Descent": face.descent,
                "Flags": (face.flags & ~(1 << 5)) | (1 << 2),  # symbolic, not nonsymbolic (as reportlab does)
                "FontBBox": pdfdoc.PDFArray(face.bbox),
                "FontName": pdfdoc.PDFName(base_name),
                "ItalicAngle": face.italicAngle,
                "StemV": face.stemV,
                "FontFile2": _RawPDF(_FONT_FILE_SLOT),
                "MissingWidth": face.defaultWidth,
            }
        )
        widths = " ".join(format_number(float(face.getCharWidth(code))) for code in subset)
        pdf_font = pdfdoc.PDFTrueTypeFont()
        pdf_font.Name = internal_name
        pdf_font.BaseFont = base_name
        pdf_font.FirstChar = 0
        pdf_font.LastChar = len(subset) - 1
        pdf_font.Widths = _RawPDF(b"[ " + widths.encode("ascii") + b" ]")
        pdf_font.ToUnicode = _RawPDF(_TO_UNICODE_SLOT)
        pdf_font.FontDescriptor = _RawPDF(_DESCRIPTOR_SLOT)
        return _SubsetObjects(
            font_file=pdfdoc.format(font_file, doc, toplevel=1),
            to_unicode=pdfdoc.format(to_unicode, doc, toplevel=1),
            descriptor=pdfdoc.format(descriptor, doc, toplevel=1),
            font=pdfdoc.format(pdf_font, doc, toplevel=1),
        )

    def addObjects(self, doc: Any) -> None:
        """Add the font subsets used by ``doc`` (reportlab calls this once per document at save time)."""
        state = self.state[doc]
        state.frozen = 1
        face = self.face
        for n, subset in enumerate(state.subsets):
            internal_name = self.getSubsetInternalName(n, doc)[1:]
            base_name = (b"".join((SUBSETN(n), b"+", face.name, face.subfontNameX))).decode("pdfdoc")
            objects = self._subset_objects(doc, internal_name, n, subset)
            # References in reportlab's order, so objects are numbered as TTFont.addObjects numbers them.
            font_file = doc.Reference(_RawPDF(objects.font_file), f"fontFile:{face.filename}({base_name})")
            to_unicode = doc.Reference(_RawPDF(objects.to_unicode), "toUnicodeCMap:" + base_name)
            descriptor = doc.Reference(
                _RawPDF(objects.descriptor.replace(_FONT_FILE_SLOT, _reference(doc, font_file))),
                "fontDescriptor:" + base_name,
            )
            font = objects.font.replace(_TO_UNICODE_SLOT, _reference(doc, to_unicode))
            font = font.replace(_DESCRIPTOR_SLOT, _reference(doc, descriptor))
            font_ref = doc.Reference(_RawPDF(font), internal_name)
            doc.idToObject["BasicFonts"].dict[internal_name] = font_ref
        del self.state[doc]


def _reference(doc: Any, reference: pdfdoc.PDFObjectReference) -> bytes:
    """``N G R`` of an object registered with ``doc``."""
    return b"%d %d R" % doc.idToObjectNumberAndVersion[reference.name]


def _core_characters(font: TTFont) -> str:
    """The fixed characters of subset 0: common ASCII, then the wording on every certificate."""
    chosen: list[str] = []
    seen = {" "}
    for text in (_CORE_ASCII, CERTIFICATE_TITLE, _FOOTER_NOTE, *_UI_STRINGS):
        for char in text:
            if char in seen or ord(char) not in font.face.charToGlyph:
                continue
            seen.add(char)
            chosen.append(char)
    if len(chosen) > _CORE_SIZE:
        raise RuntimeError(f"core subset overflows: {len(chosen)} > {_CORE_SIZE} characters")
    return "".join(chosen)


def _core_font_state(font: TTFont, core_text: str) -> TTFont.State:
    """The state of a document whose subset 0 holds exactly ``core_text`` and is closed to other text."""
    scratch = pdfdoc.PDFDocument()  # any document will do as the key of the font's per-document states
    font.splitString(core_text, scratch)
    state = font.state.pop(scratch)
    state.nextCode = max(state.nextCode, 256)
    return state


def _start_document_font_state(font: TTFont, doc: Any) -> None:
    """Start ``doc`` with the core characters in subset 0, closed, so record text goes to subsets 1+.

    Subset 0 is then identical for every certificate (cached, see :class:`_CachingTTFont`) and holds only
    glyphs nearly every certificate prints. The state is a copy of one prepared per process.
    """
    assert _core_state is not None
    state = copy.copy(_core_state)
    state.assignments = dict(_core_state.assignments)
    state.subsets = [list(subset) for subset in _core_state.subsets]
    font.state[doc] = state


# --------------------------------------------------------------------------------------------- content


@dataclass(frozen=True, slots=True)
class _Cell:
    label: str
    value: str
    wide: bool = False


def _dig(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, Mapping):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit():
            index = int(part)
            data = data[index] if index < len(data) else None
        else:
            return None
        if data is None:
            return None
    return data


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, Mapping | list | tuple):
        return canonicalize(value).decode("utf-8")
    return str(value)


def _time(value: Any) -> str:
    """``2026-03-01T06:54:00+08:00`` → ``2026-03-01 06:54:00 (UTC+08:00)``; anything unparsable as is."""
    text = _text(value)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return text
    offset = moment.utcoffset()
    stamp = moment.strftime("%Y-%m-%d %H:%M:%S")
    if offset is None:
        return stamp
    if not offset:
        return f"{stamp} (UTC)"
    zone = moment.strftime("%z")
    return f"{stamp} (UTC{zone[:3]}:{zone[3:]})"


def _section(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = payload.get(key)
    return value if isinstance(value, Mapping) else {}


class _Fields:
    """Collects the cells of one block, marking hidden fields and skipping absent ones."""

    def __init__(self, record: Mapping[str, Any], hidden: Iterable[str]) -> None:
        self.record = record
        self.hidden = set(hidden)
        self.cells: list[_Cell] = []

    def _is_hidden(self, path: str) -> bool:
        return path in self.hidden or any(h.startswith(path + ".") for h in self.hidden)

    def add(self, label: str, path: str, value: str | None = None, *, wide: bool = False) -> None:
        if value is None:
            raw = _dig(self.record, path)
            value = None if raw is None else _text(raw)
        if not value:
            if not self._is_hidden(path):
                return
            value = _HIDDEN_VALUE
        self.cells.append(_Cell(label, value, wide))

    def enum(self, label: str, path: str, table: Mapping[str, str], *, wide: bool = False) -> None:
        raw = _dig(self.record, path)
        self.add(label, path, None if raw is None else table.get(_text(raw), _text(raw)), wide=wide)


def _product_cells(record: Mapping[str, Any], hidden: Iterable[str]) -> list[_Cell]:
    f = _Fields(record, hidden)
    f.add("产品名称", "product.name")
    f.enum("产品类别", "product.category", CATEGORY)
    f.add("批次号", "product.lot")
    quantity = _dig(record, "product.quantity")
    unit = _text(_dig(record, "product.unit"))
    f.add("数量", "product.quantity", None if quantity is None else f"{_text(quantity)} {unit}".strip())
    f.add("生产日期", "product.production_date")
    f.add("保质期至", "product.expiry_date")
    f.add("产地", "product.origin")
    f.add("商品条码", "product.gtin")
    f.add("追溯码", "trace_code")
    f.add("记录编号", "record_id")
    return f.cells


def _enterprise_cells(record: Mapping[str, Any], hidden: Iterable[str]) -> list[_Cell]:
    f = _Fields(record, hidden)
    f.add("企业名称", "enterprise.name", wide=True)
    f.add("信用代码", "enterprise.uscc")
    f.enum("主体类型", "enterprise.role", ENTERPRISE_ROLE)
    return f.cells


def _event_cells(record: Mapping[str, Any], hidden: Iterable[str]) -> list[_Cell]:
    f = _Fields(record, hidden)
    f.enum("业务环节", "biz_step", BIZ_STEP)
    f.enum("事件类型", "event_type", EVENT_TYPE)
    event_time = _dig(record, "event_time")
    f.add("发生时间", "event_time", None if event_time is None else _time(event_time))
    f.enum("货品状态", "disposition", DISPOSITION)
    f.add("地点", "location.name", wide=True)
    f.add("地址", "location.address", wide=True)
    region = _dig(record, "location.region_code")
    region_name = SHANGHAI_REGIONS.get(_text(region)) if region is not None else None
    f.add("行政区划", "location.region_code", f"{_text(region)}（{region_name}）" if region_name else None)
    f.add("地点编码", "location.gln")
    name, uscc = _dig(record, "counterparty.name"), _dig(record, "counterparty.uscc")
    counterparty = f"{_text(name)}（{_text(uscc)}）" if name is not None and uscc is not None else None
    f.add("来源/去向", "counterparty.name", counterparty, wide=True)
    if name is None and uscc is not None:
        f.add("来源/去向", "counterparty.uscc", wide=True)
    temperature = _dig(record, "cold_chain.temperature_c")
    f.add("冷链温度", "cold_chain.temperature_c", None if temperature is None else f"{_text(temperature)} ℃")
    f.add("集装箱号", "cold_chain.container_no")
    f.add("车牌号", "cold_chain.vehicle_plate")
    for key, label in (("inputs", "来源批次"), ("outputs", "产出批次")):
        codes = _dig(record, key)
        joined = "、".join(_text(code) for code in codes) if isinstance(codes, list) else None
        f.add(label, key, joined, wide=True)
    return f.cells


def _chain_cells(payload: Mapping[str, Any]) -> list[_Cell]:
    merkle, anchor = _section(payload, "merkle"), _section(payload, "anchor")
    contracts = _section(anchor, "contracts")
    proof = merkle.get("proof")
    cells = [
        _Cell("证书编号", _text(payload.get("certificate_id")), wide=True),
        _Cell("证书哈希", _text(payload.get("certificate_hash")), wide=True),
        _Cell("记录哈希", _text(payload.get("record_hash")), wide=True),
        _Cell("Merkle 叶子", _text(merkle.get("leaf")), wide=True),
        _Cell("Merkle 根", _text(merkle.get("root")), wide=True),
        _Cell("交易哈希", _text(anchor.get("tx_hash")), wide=True),
        _Cell("区块高度", _text(anchor.get("block_number"))),
        _Cell("链 ID", _text(anchor.get("chain_id"))),
        _Cell("出块时间", _time(anchor.get("block_time")) if anchor.get("block_time") is not None else ""),
        _Cell("Merkle 证明", f"{len(proof)} 个节点（见附件）" if isinstance(proof, list) else ""),
        _Cell("存证合约", _text(contracts.get("TraceAnchor")), wide=True),
        _Cell("成员合约", _text(contracts.get("ConsortiumRegistry")), wide=True),
    ]
    return [cell for cell in cells if cell.value]


def _party_cells(party: Mapping[str, Any], *, role: str, fingerprint: bool = False) -> list[_Cell]:
    name, code = _text(party.get("name")), _text(party.get("code"))
    cells = [
        _Cell(role, f"{name}（{code}）" if code else name, wide=True),
        _Cell("链上账户", _text(party.get("address")), wide=True),
    ]
    if fingerprint:
        cells.append(_Cell("证书指纹", _text(party.get("certificate_fingerprint_sha256")), wide=True))
    return [cell for cell in cells if cell.value]


# Every fixed string of the layout that is not listed elsewhere, for the core subset.
# The fixed wording printed on every certificate (labels of fields nearly every record has included); the
# core subset is made of exactly these characters (see the module doc).
_UI_STRINGS: Final = (
    "证书编号签发时间扫码验证 · Scan to verify",
    "兹证明：下列追溯信息已由写入食品安全追溯联盟链（链 ID，区块），并由签发。",
    "产品信息追溯主体追溯事件上链存证上链机构与签发机构已隐藏字段",
    "产品名称产品类别批次号数量生产日期保质期至产地商品条码追溯码记录编号企业名称信用代码主体类型",
    "业务环节事件类型发生时间货品状态地点地址行政区划地点编码",
    "证书哈希记录哈希叶子根交易哈希区块高度出块时间证明个节点（见附件）",
    "存证合约成员合约链上账户证书指纹电子签章数字签名仅公开字段哈希—、第页",
)


# ---------------------------------------------------------------------------------------------- layout


_LABEL_SIZE: Final = 7.8
_VALUE_SIZE: Final = 8.6
_LEADING: Final = 10.6
_ROW_GAP: Final = 1.5
_LABEL_W: Final = 60.0
_COL_GAP: Final = 14.0


class _AdvanceWidths(dict[str, float]):
    """The face's advance widths (1/1000 em) by character; a character it lacks takes its default width."""

    default = 0.0

    def __missing__(self, char: str) -> float:
        return self.default


_ADVANCES: Final = _AdvanceWidths()


def _width(text: str, size: float) -> float:
    """String width from the face's advance table (pdfmetrics.stringWidth without its overhead)."""
    return sum(map(_ADVANCES.__getitem__, text)) * size * 0.001


def _wrap(text: str, size: float, width: float) -> list[str]:
    """Greedy wrap at any character (CJK, hex), preferring a space when one is near the edge."""
    if "\n" not in text and _width(text, size) <= width:
        return [text]
    advances = _ADVANCES
    limit = width * 1000.0 / size
    lines: list[str] = []
    for paragraph in text.split("\n"):
        current: list[str] = []
        current_w = 0.0
        for char in paragraph:
            char_w = advances[char]
            if current and current_w + char_w > limit:
                cut = "".join(current).rfind(" ")
                if cut > len(current) * 0.6:
                    lines.append("".join(current[:cut]))
                    current = current[cut + 1 :]
                else:
                    lines.append("".join(current))
                    current = []
                current_w = sum(map(advances.__getitem__, current))
            current.append(char)
            current_w += char_w
        lines.append("".join(current))
    return lines


class _Layout:
    """A cursor flowing down the page, breaking to a continuation page when a block does not fit."""

    def __init__(self, canvas: Canvas, font: TTFont, payload: Mapping[str, Any], verify_url: str) -> None:
        self.c = canvas
        self.doc = canvas._doc
        self.font = font
        self.payload = payload
        self.verify_url = verify_url
        self.page = 1
        self.y = _TOP
        self.record = _section(payload, "record")
        self.hidden = _section(payload, "hidden_fields")
        self.certificate_id = _text(payload.get("certificate_id"))
        self._font_names: dict[int, str] = {}

    # -- primitives

    def _show(self, x: float, y: float, text: str, size: float, color: str, *, bold: bool = False) -> None:
        """Write one line of text as content-stream operators (what drawString does, minus its overhead)."""
        if not text:
            return
        if _core_set.issuperset(text):  # subset 0, coded the same in every document
            runs = [(0, text.translate(_core_codes).encode("latin-1"))]
        else:
            runs = self.font.splitString(text, self.doc)
        shown = " ".join([f"{self._font_name(subset)} {size:g} Tf <{data.hex()}> Tj" for subset, data in runs])
        if bold:
            self.c.addLiteral(f"BT {color} rg {color} RG 0.45 w 2 Tr 1 0 0 1 {x:.2f} {y:.2f} Tm {shown} 0 Tr ET")
        else:
            self.c.addLiteral(f"BT {color} rg 1 0 0 1 {x:.2f} {y:.2f} Tm {shown} ET")

    def _font_name(self, subset: int) -> str:
        name = self._font_names.get(subset)
        if name is None:
            name = self._font_names[subset] = self.font.getSubsetInternalName(subset, self.doc)
        return name

    def _show_right(self, x: float, y: float, text: str, size: float, color: str) -> None:
        self._show(x - _width(text, size), y, text, size, color)

    def _show_centred(self, x: float, y: float, text: str, size: float, color: str) -> None:
        self._show(x - _width(text, size) / 2, y, text, size, color)

    def _box(self, x: float, y: float, w: float, h: float, color: str) -> None:
        self.c.addLiteral(f"{color} rg {x:.2f} {y:.2f} {w:.2f} {h:.2f} re f")

    def _rule(self, x1: float, y: float, x2: float, color: str = _RULE, width: float = 0.5) -> None:
        self.c.addLiteral(f"{color} RG {width:g} w {x1:.2f} {y:.2f} m {x2:.2f} {y:.2f} l S")

    # -- page furniture

    def _frame(self) -> None:
        w, h = _PAGE_W, _PAGE_H
        self.c.addLiteral(
            f"{_ACCENT} RG 1.4 w 20 20 {w - 40:.2f} {h - 40:.2f} re S 0.4 w 24.5 24.5 {w - 49:.2f} {h - 49:.2f} re S"
        )

    def _footer(self) -> None:
        self._rule(_MARGIN_X, 66, _PAGE_W - _MARGIN_X)
        y = 56.0
        for line in _wrap(_FOOTER_NOTE, 7.2, _CONTENT_W - 44):
            self._show(_MARGIN_X, y, line, 7.2, _MUTED)
            y -= 9.0
        self._show(_MARGIN_X, y, self.verify_url, 7.2, _ACCENT)
        self._show_right(_PAGE_W - _MARGIN_X, 56.0, f"第 {self.page} 页", 7.2, _MUTED)

    def _new_page(self) -> None:
        self._footer()
        self.c.showPage()
        self.page += 1
        self._frame()
        self._show(_MARGIN_X, _TOP - 10, CERTIFICATE_TITLE + "（续）", 10, _ACCENT)
        self._show_right(_PAGE_W - _MARGIN_X, _TOP - 10, self.certificate_id, 8.5, _MUTED)
        self._rule(_MARGIN_X, _TOP - 17, _PAGE_W - _MARGIN_X)
        self.y = _TOP - 22

    def _ensure(self, height: float) -> None:
        if self.y - height < _BOTTOM:
            self._new_page()

    # -- blocks

    def _header(self) -> None:
        qr_size = 92.0
        qr_x = _PAGE_W - _MARGIN_X - qr_size + 4  # the quiet zone may reach into the margin
        qr_top = _TOP + 6
        _draw_qr(self.c, self.verify_url, qr_x, qr_top - qr_size, qr_size)
        self._show_centred(qr_x + qr_size / 2, qr_top - qr_size - 2, "扫码验证 · Scan to verify", 7.2, _MUTED)

        self._show(_MARGIN_X, _TOP - 20, CERTIFICATE_TITLE, 19.5, _ACCENT, bold=True)
        self._show(
            _MARGIN_X,
            _TOP - 35,
            "Food Safety Traceability Blockchain Certificate · TraceChain",
            8.4,
            _MUTED,
        )
        self._show(_MARGIN_X, _TOP - 56, "证书编号", 9, _MUTED)
        self._show(_MARGIN_X + 46, _TOP - 56, self.certificate_id, 11, _INK, bold=True)
        self._show(_MARGIN_X, _TOP - 71, "签发时间", 9, _MUTED)
        self._show(_MARGIN_X + 46, _TOP - 71, _time(self.payload.get("issued_at")), 9, _INK)
        y = qr_top - qr_size - 16  # full width, below the QR code and its caption
        for line in _wrap(self._statement(), 8.6, _CONTENT_W):
            self._show(_MARGIN_X, y, line, 8.6, _INK)
            y -= 11.0
        self.y = y + 5

    def _statement(self) -> str:
        anchor = _section(self.payload, "anchor")
        agency = _text(_section(anchor, "agency").get("name")) or "成员机构"
        issuer = _text(_section(self.payload, "issuer").get("name")) or "签发机构"
        chain_id = _text(anchor.get("chain_id")) or "—"
        block = _text(anchor.get("block_number")) or "—"
        return (
            f"兹证明：下列追溯信息已由{agency}写入食品安全追溯联盟链"
            f"（链 ID {chain_id}，区块 {block}），并由{issuer}签发。"
        )

    def _heading(self, title: str, subtitle: str) -> None:
        self._ensure(20 + _LEADING * 2)
        self.y -= 5
        top = self.y
        self._box(_MARGIN_X, top - 14, _CONTENT_W, 14, _BAND)
        self._box(_MARGIN_X, top - 14, 3, 14, _ACCENT)
        self._show(_MARGIN_X + 9, top - 10.3, title, 9.6, _ACCENT)
        self._show_right(_MARGIN_X + _CONTENT_W - 6, top - 10, subtitle, 7.2, _MUTED)
        self.y = top - 14 - 3

    def _grid(self, cells: Sequence[_Cell]) -> None:
        """Label/value cells, two per row; wide cells take a whole row."""
        half = (_CONTENT_W - _COL_GAP) / 2
        row: list[_Cell] = []
        for cell in cells:
            if cell.wide:
                if row:
                    self._row(row, half)
                    row = []
                self._row([cell], _CONTENT_W)
            else:
                row.append(cell)
                if len(row) == 2:
                    self._row(row, half)
                    row = []
        if row:
            self._row(row, half)

    def _row(self, cells: Sequence[_Cell], col_w: float) -> None:
        blocks = [(cell, _wrap(cell.value, _VALUE_SIZE, col_w - _LABEL_W - 4)) for cell in cells]
        height = max(len(lines) for _, lines in blocks) * _LEADING
        if len(blocks) == 1 and height > _TOP - _BOTTOM - 40:
            self._long_row(*blocks[0])
            return
        self._ensure(height + _ROW_GAP)
        x = _MARGIN_X
        for cell, lines in blocks:
            self._show(x + 4, self.y - 8.5, cell.label, _LABEL_SIZE, _MUTED)
            color = _MUTED if cell.value == _HIDDEN_VALUE else _INK
            y = self.y - 8.5
            for line in lines:
                self._show(x + _LABEL_W, y, line, _VALUE_SIZE, color)
                y -= _LEADING
            x += col_w + _COL_GAP
        self.y -= height + _ROW_GAP

    def _long_row(self, cell: _Cell, lines: list[str]) -> None:
        """A value too long for one page (hundreds of lot codes): line by line across page breaks."""
        self._ensure(_LEADING * 2)
        self._show(_MARGIN_X + 4, self.y - 8.5, cell.label, _LABEL_SIZE, _MUTED)
        for line in lines:
            if self.y - _LEADING < _BOTTOM:
                self._new_page()
                self._show(_MARGIN_X + 4, self.y - 8.5, cell.label + "（续）", _LABEL_SIZE, _MUTED)
            self._show(_MARGIN_X + _LABEL_W, self.y - 8.5, line, _VALUE_SIZE, _INK)
            self.y -= _LEADING
        self.y -= _ROW_GAP

    def _documents(self) -> None:
        documents = self.record.get("documents")
        hidden_documents = any(path.startswith("documents.") for path in self.hidden)
        if not (isinstance(documents, list) and documents) and not hidden_documents:
            return
        self._heading("随附单证", "Supporting documents")
        columns = (("单证类型", 96.0), ("单证编号", 132.0), ("出具机构", 130.0), ("结论", 60.0), ("出具日期", 0.0))
        widths = [w or _CONTENT_W - sum(w for _, w in columns) for _, w in columns]
        x = _MARGIN_X + 4
        for (title, _), width in zip(columns, widths, strict=True):
            self._show(x, self.y - 8.5, title, _LABEL_SIZE, _MUTED)
            x += width
        self.y -= _LEADING + 1
        self._rule(_MARGIN_X, self.y + 1.5, _MARGIN_X + _CONTENT_W, width=0.4)
        for index, document in enumerate(documents if isinstance(documents, list) else []):
            doc = document if isinstance(document, Mapping) else {}

            values = [
                self._document_cell(doc, index, "type", DOCUMENT_TYPE),
                self._document_cell(doc, index, "number"),
                self._document_cell(doc, index, "issuer"),
                self._document_cell(doc, index, "result", DOCUMENT_RESULT),
                self._document_cell(doc, index, "issued_at"),
            ]
            wrapped = [_wrap(v, _VALUE_SIZE, w - 8) for v, w in zip(values, widths, strict=True)]
            height = max(len(lines) for lines in wrapped) * _LEADING
            self._ensure(height + _ROW_GAP)
            x = _MARGIN_X + 4
            for value, lines, width in zip(values, wrapped, widths, strict=True):
                color = _MUTED if value in (_HIDDEN_VALUE, "—") else _INK
                y = self.y - 8.5
                for line in lines:
                    self._show(x, y, line, _VALUE_SIZE, color)
                    y -= _LEADING
                x += width
            self.y -= height + _ROW_GAP

    def _document_cell(
        self, doc: Mapping[str, Any], index: int, key: str, table: Mapping[str, str] | None = None
    ) -> str:
        value = doc.get(key)
        if value is not None:
            text = _text(value)
            return table.get(text, text) if table else text
        return _HIDDEN_VALUE if f"documents.{index}.{key}" in self.hidden else "—"

    def _hidden_fields(self) -> None:
        self._heading("已隐藏字段", "Hidden fields · 仅公开字段哈希")
        if not self.hidden:
            self._grid([_Cell("—", "无（全部字段均已披露）", wide=True)])
            return
        hash_x = _MARGIN_X + 190
        for path in sorted(self.hidden):
            label = field_label(path)
            title = f"{label}（{path}）" if label != path else path
            lines = _wrap(_text(self.hidden[path]), 7.8, _MARGIN_X + _CONTENT_W - hash_x)
            title_lines = _wrap(title, _LABEL_SIZE, hash_x - _MARGIN_X - 10)
            height = max(len(lines), len(title_lines)) * _LEADING
            self._ensure(height + _ROW_GAP)
            for i, line in enumerate(title_lines):
                self._show(_MARGIN_X + 4, self.y - 8.5 - i * _LEADING, line, _LABEL_SIZE, _INK)
            for i, line in enumerate(lines):
                self._show(hash_x, self.y - 8.5 - i * _LEADING, line, 7.8, _MUTED)
            self.y -= height + _ROW_GAP

    def _seal(self, top: float) -> None:
        """A small 'signed' mark beside the issuer block (decorative: the PAdES signature is the proof)."""
        cx, cy = _PAGE_W - _MARGIN_X - 30, top - 18
        self.c.addLiteral(_seal_rings(cx, cy))
        self._show_centred(cx, cy + 0.5, "电子签章", 6.8, _SEAL)
        self._show_centred(cx, cy - 7.5, "数字签名", 5.6, _SEAL)

    def draw(self) -> None:
        self._frame()
        self._header()
        record, hidden = self.record, self.hidden
        self._heading("产品信息", "Product")
        self._grid(_product_cells(record, hidden))
        self._heading("追溯主体", "Responsible enterprise")
        self._grid(_enterprise_cells(record, hidden))
        self._heading("追溯事件", "Event")
        self._grid(_event_cells(record, hidden))
        self._documents()
        self._heading("上链存证", "On-chain evidence")
        self._grid(_chain_cells(self.payload))
        self._heading("上链机构与签发机构", "Anchoring agency · Issuer")
        self._grid(_party_cells(_section(_section(self.payload, "anchor"), "agency"), role="上链机构"))
        issuer_cells = _party_cells(_section(self.payload, "issuer"), role="签发机构", fingerprint=True)
        if issuer_cells:
            self._ensure(len(issuer_cells) * (_LEADING + _ROW_GAP) + 12)
            top = self.y
            self._grid(issuer_cells)
            self._seal(top)
        self._hidden_fields()
        self._footer()
        self.c.showPage()


# ---------------------------------------------------------------------------------------------- pieces


@functools.lru_cache(maxsize=128)
def _seal_rings(cx: float, cy: float) -> str:
    """The seal's two red rings around (cx, cy), reportlab's circle paths as one literal (positions recur)."""
    scratch = Canvas(BytesIO())
    start = len(scratch._code)
    scratch.saveState()
    scratch.setStrokeColorRGB(0.698, 0.133, 0.133)
    scratch.setLineWidth(1.3)
    scratch.circle(cx, cy, 21, stroke=1, fill=0)
    scratch.setLineWidth(0.5)
    scratch.circle(cx, cy, 18, stroke=1, fill=0)
    scratch.restoreState()
    return "\n".join(scratch._code[start:])


_QR_MASK: Final = 0
"""Fixed QR mask pattern: every mask is standard-conformant, and scoring all eight costs ~5 ms per PDF."""


@functools.cache
def _rs_multiples(ec_count: int) -> tuple[int, ...]:
    """For every GF(256) factor, factor × reportlab's generator polynomial (leading 1 dropped) as one int."""
    exp, log = qrencoder.EXP_TABLE, qrencoder.LOG_TABLE
    generator = qrencoder.QRUtil.getErrorCorrectPolynomial(ec_count)
    logs = [log[generator.get(i)] for i in range(1, generator.getLength())]
    return (0, *(int.from_bytes(bytes(exp[(g + log[factor]) % 255] for g in logs)) for factor in range(1, 256)))


def _rs_remainder(data: Sequence[int], ec_count: int) -> list[int]:
    """Error-correction codewords: the remainder of data(x)·x^n by the generator, in GF(256).

    The remainder's ``ec_count`` coefficients are the bytes of one int, so each step is a shift and an XOR.
    """
    multiples = _rs_multiples(ec_count)
    top = 8 * (ec_count - 1)
    keep = (1 << top) - 1
    remainder = 0
    for byte in data:
        remainder = ((remainder & keep) << 8) ^ multiples[byte ^ (remainder >> top)]
    return list(remainder.to_bytes(ec_count))


class _QRBits:
    """A QR bit stream in one int, for the data segments' ``write`` (reportlab's buffer keeps a list item per bit)."""

    def __init__(self) -> None:
        self.value = 0
        self.length = 0

    def put(self, num: int, length: int) -> None:
        """Append the low ``length`` bits of ``num``, most significant first."""
        self.value = (self.value << length) | (num & ((1 << length) - 1))
        self.length += length


def _qr_codewords(code: qrencoder.QRCode) -> list[int]:
    """reportlab's ``QRCode.createData`` with an int bit buffer and table-driven Reed-Solomon (~10x faster)."""
    blocks = qrencoder.QRRSBlock.getRSBlocks(code.version, code.errorCorrectLevel)
    bits = _QRBits()
    for data in code.dataList:
        data.write(bits, code.version)
    capacity = sum(block.dataCount for block in blocks) * 8
    if bits.length > capacity:
        raise ValueError("verify URL too long for a QR code")
    if bits.length + 4 <= capacity:
        bits.put(0, 4)
    bits.put(0, -bits.length % 8)
    pads = itertools.cycle((qrencoder.QRCode.PAD0, qrencoder.QRCode.PAD1))
    codewords = list(bits.value.to_bytes(bits.length // 8, "big"))
    codewords.extend(next(pads) for _ in range(capacity // 8 - len(codewords)))
    data_blocks, ec_blocks, offset = [], [], 0
    for block in blocks:
        chunk = codewords[offset : offset + block.dataCount]
        offset += block.dataCount
        data_blocks.append(chunk)
        ec_blocks.append(_rs_remainder(chunk, block.totalCount - block.dataCount))
    return [
        codeword
        for group in itertools.chain(itertools.zip_longest(*data_blocks), itertools.zip_longest(*ec_blocks))
        for codeword in group
        if codeword is not None
    ]


class _QRFunctionPatterns(qrencoder.QRCode):
    """reportlab's ``makeImpl`` minus the data placement: finder, alignment, timing, format and version info."""

    def mapData(self, data: Sequence[int], maskPattern: int) -> None:
        """Leave the data modules light (:func:`_qr_rows` places them)."""


@dataclass(frozen=True, slots=True)
class _QRSymbolPlan:
    """How the data bits of one symbol version land in its module rows (level M, the fixed mask)."""

    size: int
    data_modules: int
    mask: int
    """The mask's bits over the data modules in placement order, as one int."""
    gather: Callable[[str], tuple[str, ...]]
    """Picks the row-major modules out of function-pattern modules + data bits (an ``itemgetter``)."""
    function_modules: str
    """Row-major ``"1"`` (dark) / ``"0"`` of the fixed patterns; data modules are ``"0"`` here."""


@functools.cache
def _qr_symbol_plan(version: int) -> _QRSymbolPlan:
    """Built once per version from reportlab's own pattern setup, mask function and placement order."""
    symbol = _QRFunctionPatterns(version, qrencoder.QRErrorCorrectLevel.M)
    symbol.dataCache = []
    symbol.makeImpl(False, _QR_MASK)
    size = symbol.moduleCount
    function_modules = "".join("1" if dark else "0" for row in symbol.modules for dark in row)
    mask = qrencoder.QRUtil.getMask(_QR_MASK)
    placement = [(row, col) for col, row in symbol._dataPosIterator()]
    source = list(range(size * size))  # function modules stay where they are
    for index, (row, col) in enumerate(placement):
        source[row * size + col] = size * size + index
    return _QRSymbolPlan(
        size=size,
        data_modules=len(placement),
        mask=int("".join("1" if mask(row, col) else "0" for row, col in placement), 2),
        gather=operator.itemgetter(*source),
        function_modules=function_modules,
    )


def _qr_rows(data: str) -> list[str]:
    """The module rows (``"1"`` dark) of ``data`` as a QR code at error-correction level M, fixed mask.

    Bit for bit reportlab's symbol; the data bits are masked as one int and put in place by one gather.
    """
    code = qrencoder.QRCode(None, qrencoder.QRErrorCorrectLevel.M)
    code.addData(data)
    code.version = code.calculate_version()
    plan = _qr_symbol_plan(code.version)
    codewords = _qr_codewords(code)
    padding = plan.data_modules - 8 * len(codewords)  # remainder bits, light before masking
    bits = (int.from_bytes(bytes(codewords)) << padding) ^ plan.mask
    modules = "".join(plan.gather(plan.function_modules + format(bits, f"0{plan.data_modules}b")))
    return [modules[start : start + plan.size] for start in range(0, plan.size * plan.size, plan.size)]


_DARK_RUN: Final = re.compile("1+")


def _draw_qr(canvas: Canvas, data: str, x: float, y: float, size: float) -> None:
    """Draw ``data`` as a QR code (level M, 4-module quiet zone): one vector path of module-row runs."""
    rows = _qr_rows(data)
    count = len(rows)
    quiet = 4
    box = size / (count + 2 * quiet)
    # In module units, origin at the symbol's top-left corner, y growing downwards: integer operands only.
    ops = [
        f"q 1 g {x:.3f} {y:.3f} {size:.3f} {size:.3f} re f 0 g",
        f"1 0 0 1 {x:.3f} {y + size:.3f} cm {box:.5f} 0 0 {-box:.5f} {quiet} {quiet} cm",
    ]
    for r, row in enumerate(rows):
        ops.extend(f"{run.start()} {r} {run.end() - run.start()} 1 re" for run in _DARK_RUN.finditer(row))
    ops.append("f Q")
    canvas.addLiteral("\n".join(ops))


def _set_metadata(canvas: Canvas, payload: Mapping[str, Any], attachment: bytes) -> None:
    certificate_id = _text(payload.get("certificate_id"))
    canvas.setTitle(f"{CERTIFICATE_TITLE} {certificate_id}".strip())
    canvas.setAuthor(_text(_section(payload, "issuer").get("name")) or "TraceChain")
    canvas.setSubject("")
    canvas.setCreator("TraceChain")
    doc = canvas._doc
    # invariant=1 keeps output reproducible; the dates then come from issued_at and /ID from the payload.
    stamp = doc._timeStamp
    try:
        issued = dt.datetime.fromisoformat(_text(payload.get("issued_at")))
    except ValueError:
        issued = None
    if issued is not None and issued.utcoffset() is not None:
        issued = issued.astimezone(dt.UTC)
        stamp.t = issued.timestamp()
        stamp.lt = issued.timetuple()
        stamp.YMDhms = tuple(stamp.lt)[:6]
    doc.updateSignature(hashlib.sha256(attachment).digest())


class _RawPDF(pdfdoc.PDFObject):
    """Pre-formatted PDF syntax written verbatim (names with ``/`` in them, cached arrays)."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def format(self, document: Any) -> bytes:
        return self.raw


def _attach_payload(canvas: Canvas, attachment: bytes) -> None:
    """Add ``certificate.json`` to the catalog's /EmbeddedFiles name tree (AFRelationship /Data)."""
    doc = canvas._doc
    stream = pdfdoc.PDFStream(
        pdfdoc.PDFDictionary(
            {
                "Type": _RawPDF(b"/EmbeddedFile"),
                "Subtype": _RawPDF(b"/application#2Fjson"),  # reportlab's PDFName would not escape "/"
                "Params": pdfdoc.PDFDictionary(
                    {
                        "Size": len(attachment),
                        "CheckSum": _RawPDF(b"<" + hashlib.md5(attachment).hexdigest().encode() + b">"),
                    }
                ),
                "Filter": _RawPDF(b"/FlateDecode"),
            }
        ),
        zlib.compress(attachment, 6),
        filters=[],
    )
    filespec = pdfdoc.PDFDictionary(
        {
            "Type": _RawPDF(b"/Filespec"),
            "F": pdfdoc.PDFString(ATTACHMENT_NAME),
            "UF": pdfdoc.PDFString(ATTACHMENT_NAME),
            "Desc": pdfdoc.PDFString("上链凭证机器可读数据（RFC 8785 规范化 JSON）"),
            "AFRelationship": _RawPDF(b"/Data"),
            "EF": pdfdoc.PDFDictionary({"F": stream, "UF": stream}),
        }
    )
    filespec_ref = doc.Reference(filespec)
    doc.Catalog.Names = pdfdoc.PDFDictionary(
        {
            "EmbeddedFiles": pdfdoc.PDFDictionary(
                {"Names": pdfdoc.PDFArray([pdfdoc.PDFString(ATTACHMENT_NAME), filespec_ref])}
            )
        }
    )
