"""Validation of trace records: one test per rule, each pinning the path of the error it reports."""

from __future__ import annotations

import copy
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from trace_sdk.exceptions import FieldError, TraceError, ValidationError
from trace_sdk.protocol import records as records_module
from trace_sdk.protocol.canonical import canonicalize
from trace_sdk.protocol.records import load_schema, validate_record, validate_records

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
"""The validation clock: after every sample record's event_time."""


def only_error(record: Any) -> FieldError:
    """The single error of `record` (fails if there is none or more than one)."""
    errors = validate_record(record, 7, now=NOW)
    assert len(errors) == 1, errors
    return errors[0]


# ------------------------------------------------------------------------------------------- the whole set


def test_every_sample_record_validates(records: list[dict[str, Any]]) -> None:
    assert len(records) == 34
    validate_records(records, now=NOW)
    assert all(validate_record(r, i, now=NOW) == [] for i, r in enumerate(records))


def test_errors_of_several_records_are_all_reported_with_index_and_record_id(
    records: list[dict[str, Any]],
) -> None:
    records[3]["product"]["gtin"] = "6906900602670"
    records[3]["biz_step"] = "dancing"
    records[10]["enterprise"]["uscc"] = "91310115735468487A"
    records[20] = "not a record"
    with pytest.raises(ValidationError) as caught:
        validate_records(records, now=NOW)
    found = {(e.index, e.record_id, e.path) for e in caught.value.errors}
    assert found == {
        (3, records[3]["record_id"], "product.gtin"),
        (3, records[3]["record_id"], "biz_step"),
        (10, records[10]["record_id"], "enterprise.uscc"),
        (20, None, ""),
    }
    summary = str(caught.value)
    assert summary.startswith("4 problem(s) in 3 record(s):")
    assert f"record 3 ({records[3]['record_id']}) product.gtin: check digit is wrong" in summary
    assert "record 20 (record): a record must be a JSON object" in summary


def test_validate_records_wants_a_list() -> None:
    with pytest.raises(TypeError):
        validate_records({"schema": "trace-record/v1"}, now=NOW)  # type: ignore[arg-type]


def test_now_must_be_timezone_aware(record: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="timezone"):
        validate_record(record, now=NOW.replace(tzinfo=None))


# ------------------------------------------------------------------------------------------- schema rules


def test_record_must_be_an_object() -> None:
    error = only_error(["a", "list"])
    assert (error.index, error.record_id, error.path) == (7, None, "")
    assert "JSON object" in error.message


def test_required_field_missing(record: dict[str, Any]) -> None:
    del record["trace_code"]
    error = only_error(record)
    assert (error.path, error.record_id) == ("trace_code", "DEMO-r000002")
    assert "required" in error.message


def test_nested_required_field_missing(record: dict[str, Any]) -> None:
    del record["product"]["lot"]
    assert only_error(record).path == "product.lot"


def test_unknown_field(record: dict[str, Any]) -> None:
    record["product"]["colour"] = "red"
    error = only_error(record)
    assert error.path == "product.colour"
    assert "not a field of the protocol" in error.message


def test_schema_version_is_a_constant(record: dict[str, Any]) -> None:
    record["schema"] = "trace-record/v2"
    error = only_error(record)
    assert error.path == "schema"
    assert '"trace-record/v1"' in error.message


def test_enum(record: dict[str, Any]) -> None:
    record["documents"][2]["result"] = "unclear"
    error = only_error(record)
    assert error.path == "documents.2.result"
    assert "use one of: pass, fail, negative, positive, n/a" in error.message


def test_wrong_type(record: dict[str, Any]) -> None:
    record["product"]["name"] = 42
    error = only_error(record)
    assert error.path == "product.name"
    assert error.message.startswith("must be a string, not a number")


def test_numeric_string_is_not_a_number(record: dict[str, Any]) -> None:
    record["product"]["quantity"] = "24.5"
    error = only_error(record)
    assert error.path == "product.quantity"
    assert "must be a number, not a string (write 24.5 without quotes)" in error.message


def test_boolean_is_not_a_number(record: dict[str, Any]) -> None:
    record["cold_chain"]["temperature_c"] = True
    error = only_error(record)
    assert error.path == "cold_chain.temperature_c"
    assert "must be a number, not true/false" in error.message


def test_nan_and_infinity_are_not_numbers(record: dict[str, Any]) -> None:
    record["product"]["quantity"] = float("nan")
    assert only_error(record).path == "product.quantity"
    record["product"]["quantity"] = 1.0
    record["cold_chain"]["temperature_c"] = float("-inf")
    error = only_error(record)
    assert error.path == "cold_chain.temperature_c"
    assert "finite" in error.message


def test_pattern(record: dict[str, Any]) -> None:
    record["location"]["region_code"] = "31011"
    error = only_error(record)
    assert error.path == "location.region_code"
    assert "6-digit administrative division code" in error.message


def test_min_length(record: dict[str, Any]) -> None:
    record["product"]["name"] = ""
    error = only_error(record)
    assert error.path == "product.name"
    assert "must not be empty" in error.message


def test_max_length(record: dict[str, Any]) -> None:
    record["product"]["lot"] = "L" * 65
    error = only_error(record)
    assert error.path == "product.lot"
    assert "65 characters, at most 64" in error.message


def test_exclusive_minimum(record: dict[str, Any]) -> None:
    record["product"]["quantity"] = 0
    error = only_error(record)
    assert error.path == "product.quantity"
    assert "greater than 0" in error.message


@pytest.mark.parametrize(("value", "reason"), [(-80.5, "at least -80"), (60.01, "at most 60")])
def test_minimum_and_maximum(record: dict[str, Any], value: float, reason: str) -> None:
    record["cold_chain"]["temperature_c"] = value
    error = only_error(record)
    assert error.path == "cold_chain.temperature_c"
    assert reason in error.message


@pytest.mark.parametrize("value", ["2026/01/17", "2026-02-30", "26-01-17", "2026-01-17T00:00:00+08:00"])
def test_date_format(record: dict[str, Any], value: str) -> None:
    record["product"]["production_date"] = value
    error = only_error(record)
    assert error.path == "product.production_date"
    assert "YYYY-MM-DD" in error.message


@pytest.mark.parametrize("value", ["2026-03-01 06:54:00+08:00", "2026-03-01T06:54+08:00", "2026-03-01", "now"])
def test_date_time_format(record: dict[str, Any], value: str) -> None:
    record["event_time"] = value
    assert only_error(record).path == "event_time"


def test_date_time_must_be_a_real_moment(record: dict[str, Any]) -> None:
    record["event_time"] = "2026-02-29T06:54:00+08:00"
    error = only_error(record)
    assert error.path == "event_time"
    assert "not a real date" in error.message


def test_object_type(record: dict[str, Any]) -> None:
    record["cold_chain"] = "-18"
    error = only_error(record)
    assert error.path == "cold_chain"
    assert "must be an object" in error.message


def test_array_type(record: dict[str, Any]) -> None:
    record["inputs"] = "DEMOI918983889200009"
    error = only_error(record)
    assert error.path == "inputs"
    assert "must be a list" in error.message


def test_array_items(record: dict[str, Any]) -> None:
    record["inputs"] = ["DEMOI918983889200009", "bad code!"]
    assert only_error(record).path == "inputs.1"


def test_max_items(record: dict[str, Any]) -> None:
    record["documents"] = [{"type": "other", "number": f"N{i}"} for i in range(51)]
    error = only_error(record)
    assert error.path == "documents"
    assert "51 items, at most 50" in error.message


def test_unique_items(record: dict[str, Any]) -> None:
    record["outputs"] = ["DEMOW698611480900004", "DEMOW343530251200005", "DEMOW698611480900004"]
    error = only_error(record)
    assert error.path == "outputs.2"
    assert "repeats item 0" in error.message


# ------------------------------------------------------------------------------------------- prose rules


def test_uscc_check_character(record: dict[str, Any]) -> None:
    record["enterprise"]["uscc"] = "91310115735468487A"
    error = only_error(record)
    assert error.path == "enterprise.uscc"
    assert error.message.startswith("check character is wrong (expected L)")


def test_counterparty_uscc_check_character(records: list[dict[str, Any]]) -> None:
    record = next(r for r in records if "uscc" in r.get("counterparty", {}))
    record["counterparty"]["uscc"] = record["counterparty"]["uscc"][:17] + "0"
    assert only_error(record).path == "counterparty.uscc"


def test_gtin_check_digit(record: dict[str, Any]) -> None:
    record["product"]["gtin"] = "6906900602670"
    error = only_error(record)
    assert str(error) == "product.gtin: check digit is wrong (expected 9) / 校验位错误（应为 9）"


def test_gln_check_digit(record: dict[str, Any]) -> None:
    record["location"]["gln"] = "6935268596930"
    error = only_error(record)
    assert error.path == "location.gln"
    assert "expected 1" in error.message


def test_expiry_not_before_production(record: dict[str, Any]) -> None:
    record["product"]["expiry_date"] = "2026-01-16"
    error = only_error(record)
    assert error.path == "product.expiry_date"
    assert "before the production date 2026-01-17" in error.message
    record["product"]["expiry_date"] = "2026-01-17"  # same day is fine
    assert validate_record(record, now=NOW) == []


def test_event_time_needs_a_utc_offset(record: dict[str, Any]) -> None:
    record["event_time"] = "2026-03-01T06:54:00"
    error = only_error(record)
    assert error.path == "event_time"
    assert "no UTC offset" in error.message
    record["event_time"] = "2026-03-01T06:54:00.250Z"
    assert validate_record(record, now=NOW) == []


def test_event_time_at_most_ten_minutes_ahead(record: dict[str, Any]) -> None:
    record["event_time"] = (NOW + timedelta(minutes=10, seconds=1)).isoformat()
    error = only_error(record)
    assert error.path == "event_time"
    assert "10 minutes in the future" in error.message
    record["event_time"] = (NOW + timedelta(minutes=9, seconds=59)).astimezone().isoformat()
    assert validate_record(record, now=NOW) == []
    # The offset counts: 20:05 at +08:00 is 12:05 UTC, five minutes ahead of NOW (12:00 UTC).
    record["event_time"] = "2026-06-01T20:05:00+08:00"
    assert validate_record(record, now=NOW) == []


def test_inputs_must_not_contain_own_trace_code(record: dict[str, Any]) -> None:
    record["inputs"] = ["DEMOI918983889200009", record["trace_code"]]
    error = only_error(record)
    assert error.path == "inputs.1"
    assert "own trace_code" in error.message


def test_strings_must_be_nfc(record: dict[str, Any]) -> None:
    record["product"]["origin"] = unicodedata.normalize("NFD", "Société")
    error = only_error(record)
    assert error.path == "product.origin"
    assert "NFC" in error.message


@pytest.mark.parametrize("value", ["冷冻\n猪肉", "tab\there", "del\x7f", "nul\x00"])
def test_strings_must_not_hold_control_characters(record: dict[str, Any], value: str) -> None:
    record["product"]["name"] = value
    error = only_error(record)
    assert error.path == "product.name"
    assert "control character" in error.message


@pytest.mark.parametrize("value", [" 上海", "上海 ", "上海\u3000", "\u00a0上海"])
def test_strings_must_not_have_leading_or_trailing_whitespace(record: dict[str, Any], value: str) -> None:
    record["enterprise"]["name"] = value
    error = only_error(record)
    assert error.path == "enterprise.name"
    assert "start or end with" in error.message


def test_inner_spaces_are_fine(record: dict[str, Any]) -> None:
    record["enterprise"]["name"] = "上海 东方\u3000冷链"
    assert validate_record(record, now=NOW) == []


def test_strings_must_be_valid_unicode(record: dict[str, Any]) -> None:
    record["product"]["name"] = "bad \ud800 surrogate"
    error = only_error(record)
    assert error.path == "product.name"
    assert "unpaired surrogate" in error.message


def test_extensions_keys(record: dict[str, Any]) -> None:
    record["extensions"] = {"Batch-Ref": "x", "ok": {"nested.key": 1}}
    errors = validate_record(record, now=NOW)
    assert [e.path for e in errors] == ["extensions.Batch-Ref", "extensions.ok.nested.key"]
    assert all("lower-case letters" in e.message for e in errors)


def test_extensions_content_follows_the_string_and_number_rules(record: dict[str, Any]) -> None:
    record["extensions"] = {"note": " padded", "list": [1, float("inf")], "big": 2**53 + 1}
    errors = validate_record(record, now=NOW)
    assert [e.path for e in errors] == ["extensions.note", "extensions.list.1", "extensions.big"]


def test_extensions_nesting_limit(record: dict[str, Any]) -> None:
    deep: Any = "leaf"
    for _ in range(40):
        deep = {"k": deep}
    record["extensions"] = {"deep": deep}
    error = only_error(record)
    assert error.path == "extensions.deep" + ".k" * 32  # extensions.deep is level 1
    assert "nested more than 32 levels" in error.message


def test_extensions_size_limit(record: dict[str, Any]) -> None:
    record["extensions"] = {"note": "x" * 4083}  # {"note":"xxx…"} = 4083 + 11 bytes = 4094
    assert validate_record(record, now=NOW) == []
    record["extensions"] = {"note": "冷" * 1400}  # 4200 bytes as UTF-8
    error = only_error(record)
    assert error.path == "extensions"
    assert "4211 bytes as canonical JSON, at most 4096" in error.message


def test_record_size_limit(record: dict[str, Any]) -> None:
    record["outputs"] = [f"DEMOW{i:06d}{'x' * 100}" for i in range(150)]
    size = len(canonicalize(record))
    assert size > 16384
    error = only_error(record)
    assert error.path == ""
    assert f"record is {size} bytes as canonical JSON, at most 16384" in error.message


def test_a_known_canonical_size_gives_the_same_verdict(records: list[dict[str, Any]]) -> None:
    big = copy.deepcopy(records[1])
    big["outputs"] = [f"DEMOW{i:06d}{'x' * 100}" for i in range(150)]  # over the size limit
    broken = copy.deepcopy(records[3])
    broken["product"]["quantity"] = -1
    for record in [*records, big, broken]:
        size = len(canonicalize(record))
        assert validate_record(record, 3, now=NOW, canonical_size=size) == validate_record(record, 3, now=NOW)
    assert [e.path for e in validate_record(big, now=NOW, canonical_size=len(canonicalize(big)))] == [""]
    # the size given is the size ruled on
    assert validate_record(records[0], now=NOW, canonical_size=16384) == []
    (error,) = validate_record(records[0], now=NOW, canonical_size=16385)
    assert error.path == "" and "record is 16385 bytes as canonical JSON" in error.message


def test_prepare_records_salts_only_when_asked(records: list[dict[str, Any]]) -> None:
    bad = dict(records[0], record_id="")
    salted = records_module.prepare_records([records[0], bad], first_index=5)
    unsalted = records_module.prepare_records([records[0], bad], first_index=5, salted=False)
    assert [p.index for p in salted] == [p.index for p in unsalted] == [5, 6]
    assert salted[0].canonical == unsalted[0].canonical == canonicalize(records[0])
    assert salted[0].content_sha256 == unsalted[0].content_sha256
    assert salted[0].salts_json is not None and salted[0].record_hash is not None
    assert unsalted[0].salts_json is None and unsalted[0].record_hash is None
    assert salted[1].errors == unsalted[1].errors and salted[1].errors[0].path == "record_id"


# ------------------------------------------------------------------------------------------- the schema drives


def test_a_schema_change_is_picked_up(record: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    schema = load_schema()
    schema["properties"]["biz_step"]["enum"].append("fermenting")
    schema["properties"]["product"]["properties"]["lot"]["maxLength"] = 8
    monkeypatch.setattr(records_module, "load_schema", lambda: copy.deepcopy(schema))
    records_module._compiled.cache_clear()
    try:
        record["biz_step"] = "fermenting"
        assert only_error(record).path == "product.lot"  # "IMP20260000" is 11 > 8 characters now
    finally:
        records_module._compiled.cache_clear()


def test_an_unsupported_schema_keyword_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = load_schema()
    schema["properties"]["record_id"]["oneOf"] = []
    monkeypatch.setattr(records_module, "load_schema", lambda: schema)
    records_module._compiled.cache_clear()
    try:
        with pytest.raises(TraceError, match="oneOf"):
            validate_record({}, now=NOW)
    finally:
        records_module._compiled.cache_clear()
