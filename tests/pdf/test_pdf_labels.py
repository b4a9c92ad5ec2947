"""Chinese labels: every enum value of the shipped schema has one."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from certificate_service.pdf.labels import ENUM_LABELS, enum_label, field_label

SCHEMA = Path(__file__).resolve().parents[2] / "trace_sdk" / "protocol" / "schema" / "trace-record.v1.schema.json"
CJK = re.compile(r"[\u4e00-\u9fff]")


def schema_enums(node: Any, path: str = "") -> Iterator[tuple[str, list[str]]]:
    """(dotted path without array indices, enum values) for every enum in the schema."""
    if not isinstance(node, dict):
        return
    if "enum" in node:
        yield path, node["enum"]
    for key, child in node.get("properties", {}).items():
        yield from schema_enums(child, f"{path}.{key}" if path else key)
    if "items" in node:
        yield from schema_enums(node["items"], path)


ENUMS = list(schema_enums(json.loads(SCHEMA.read_text(encoding="utf-8"))))


def test_schema_has_the_expected_enums() -> None:
    assert {path for path, _ in ENUMS} == set(ENUM_LABELS)


@pytest.mark.parametrize(("path", "values"), ENUMS, ids=[path for path, _ in ENUMS])
def test_every_enum_value_has_a_chinese_label(path: str, values: list[str]) -> None:
    table = ENUM_LABELS[path]
    assert set(table) == set(values)
    for value in values:
        assert CJK.search(enum_label(path, value)), (path, value)


def test_document_labels() -> None:
    assert enum_label("documents.0.type", "customs_declaration") == "报关单"
    assert enum_label("documents.3.type", "quarantine_certificate") == "检疫证明"
    assert enum_label("documents.type", "nucleic_acid_test") == "核酸检测证明"
    assert enum_label("documents.type", "disinfection_certificate") == "消毒证明"
    assert enum_label("documents.1.result", "negative") == "阴性"


def test_unknown_values_pass_through() -> None:
    assert enum_label("biz_step", "teleporting") == "teleporting"
    assert enum_label("product.name", "猪肉") == "猪肉"


def test_field_labels() -> None:
    assert field_label("contact.person") == "联系人"
    assert field_label("documents.1.number") == "单证编号（第2项）"
    assert field_label("extensions.farm_id") == "扩展数据（farm_id）"
    assert field_label("no.such.field") == "no.such.field"
