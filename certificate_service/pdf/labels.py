"""Chinese labels for the enum values and field paths of ``trace-record/v1``, as printed on certificates.

Every enum value of the schema has a label here (a test checks it against the shipped schema). Unknown
values are printed as they are, never guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "BIZ_STEP",
    "CATEGORY",
    "DISPOSITION",
    "DOCUMENT_RESULT",
    "DOCUMENT_TYPE",
    "ENTERPRISE_ROLE",
    "ENUM_LABELS",
    "EVENT_TYPE",
    "FIELD_LABELS",
    "SHANGHAI_REGIONS",
    "enum_label",
    "field_label",
]

EVENT_TYPE: Mapping[str, str] = MappingProxyType(
    {
        "ObjectEvent": "对象事件",
        "AggregationEvent": "聚合事件（装箱/拆箱）",
        "TransformationEvent": "转化事件（加工/屠宰）",
    }
)

BIZ_STEP: Mapping[str, str] = MappingProxyType(
    {
        "commissioning": "赋码建档",
        "producing": "生产",
        "harvesting": "采收/捕捞",
        "slaughtering": "屠宰",
        "processing": "加工",
        "packing": "包装",
        "inspecting": "检验",
        "import_inspecting": "海关进口查验",
        "sampling": "抽样检测",
        "storing": "仓储",
        "shipping": "发货",
        "receiving": "收货",
        "wholesale_selling": "批发销售",
        "retail_selling": "零售",
        "serving": "餐饮服务",
        "recalling": "召回",
        "destroying": "销毁",
    }
)

DISPOSITION: Mapping[str, str] = MappingProxyType(
    {
        "active": "在库",
        "in_progress": "处理中",
        "in_transit": "运输中",
        "conformant": "合格",
        "non_conformant": "不合格",
        "sold": "已售出",
        "recalled": "已召回",
        "destroyed": "已销毁",
    }
)

CATEGORY: Mapping[str, str] = MappingProxyType(
    {
        "grain": "粮食",
        "edible_oil": "食用油",
        "meat": "畜产品",
        "poultry": "禽产品",
        "egg": "蛋品",
        "aquatic": "水产品",
        "vegetable": "蔬菜",
        "fruit": "水果",
        "soy": "豆制品",
        "dairy": "乳制品",
        "infant_formula": "婴幼儿配方乳粉",
        "special_food": "特殊医学用途配方食品",
        "health_food": "保健食品",
        "liquor": "酒类",
        "other": "其他",
    }
)

ENTERPRISE_ROLE: Mapping[str, str] = MappingProxyType(
    {
        "producer": "生产者",
        "importer": "进口商",
        "processor": "加工企业",
        "cold_storage": "冷库仓储",
        "logistics": "物流承运",
        "wholesaler": "批发商",
        "retailer": "零售商",
        "caterer": "餐饮服务提供者",
        "school_canteen": "学校食堂",
        "other": "其他",
    }
)

DOCUMENT_TYPE: Mapping[str, str] = MappingProxyType(
    {
        "inspection_report": "检验报告",
        "quarantine_certificate": "检疫证明",
        "customs_declaration": "报关单",
        "nucleic_acid_test": "核酸检测证明",
        "disinfection_certificate": "消毒证明",
        "compliance_certificate": "承诺达标合格证",
        "purchase_invoice": "进货票据",
        "other": "其他单证",
    }
)

DOCUMENT_RESULT: Mapping[str, str] = MappingProxyType(
    {
        "pass": "合格",
        "fail": "不合格",
        "negative": "阴性",
        "positive": "阳性",
        "n/a": "不适用",
    }
)

ENUM_LABELS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "event_type": EVENT_TYPE,
        "biz_step": BIZ_STEP,
        "disposition": DISPOSITION,
        "product.category": CATEGORY,
        "enterprise.role": ENTERPRISE_ROLE,
        "documents.type": DOCUMENT_TYPE,
        "documents.result": DOCUMENT_RESULT,
    }
)
"""Enum label tables keyed by field path (array items without their index)."""

FIELD_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "schema": "协议版本",
        "record_id": "记录编号",
        "trace_code": "追溯码",
        "event_type": "事件类型",
        "biz_step": "业务环节",
        "event_time": "发生时间",
        "disposition": "货品状态",
        "product": "产品",
        "product.name": "产品名称",
        "product.category": "产品类别",
        "product.gtin": "商品条码",
        "product.lot": "批次号",
        "product.quantity": "数量",
        "product.unit": "计量单位",
        "product.production_date": "生产日期",
        "product.expiry_date": "保质期至",
        "product.origin": "产地",
        "enterprise": "追溯主体",
        "enterprise.name": "企业名称",
        "enterprise.uscc": "统一社会信用代码",
        "enterprise.role": "主体类型",
        "location": "地点",
        "location.name": "地点名称",
        "location.address": "地址",
        "location.region_code": "行政区划代码",
        "location.gln": "地点编码",
        "counterparty": "来源/去向",
        "counterparty.name": "来源/去向单位",
        "counterparty.uscc": "来源/去向信用代码",
        "inputs": "来源批次",
        "outputs": "产出批次",
        "documents": "随附单证",
        "documents.type": "单证类型",
        "documents.number": "单证编号",
        "documents.issuer": "出具机构",
        "documents.result": "结论",
        "documents.issued_at": "出具日期",
        "cold_chain": "冷链信息",
        "cold_chain.temperature_c": "温度",
        "cold_chain.vehicle_plate": "车牌号",
        "cold_chain.container_no": "集装箱号",
        "contact": "联系人信息",
        "contact.person": "联系人",
        "contact.phone": "联系电话",
        "extensions": "扩展数据",
    }
)
"""Chinese names of record fields by dotted path (array items without their index)."""

SHANGHAI_REGIONS: Mapping[str, str] = MappingProxyType(
    {
        "310000": "上海市",
        "310101": "上海市黄浦区",
        "310104": "上海市徐汇区",
        "310105": "上海市长宁区",
        "310106": "上海市静安区",
        "310107": "上海市普陀区",
        "310109": "上海市虹口区",
        "310110": "上海市杨浦区",
        "310112": "上海市闵行区",
        "310113": "上海市宝山区",
        "310114": "上海市嘉定区",
        "310115": "上海市浦东新区",
        "310116": "上海市金山区",
        "310117": "上海市松江区",
        "310118": "上海市青浦区",
        "310120": "上海市奉贤区",
        "310151": "上海市崇明区",
    }
)
"""行政区划代码 of Shanghai's districts (GB/T 2260), printed beside a location's region_code."""

_INDEX = re.compile(r"\.(\d+)(?=\.|$)")


def enum_label(path: str, value: object) -> str:
    """The Chinese label of an enum value at ``path`` (e.g. ``biz_step``), or the value itself if unknown."""
    text = "" if value is None else str(value)
    table = ENUM_LABELS.get(_INDEX.sub("", path))
    if table is None:
        return text
    return table.get(text, text)


def field_label(path: str) -> str:
    """A Chinese name for a dotted field path: ``documents.1.number`` → ``单证编号（第2项）``."""
    indices = [int(i) for i in _INDEX.findall(path)]
    generic = _INDEX.sub("", path)
    label = FIELD_LABELS.get(generic)
    if label is None:
        if not generic.startswith("extensions."):
            return path
        label = f"{FIELD_LABELS['extensions']}（{generic.removeprefix('extensions.')}）"
    if indices:
        label += "（第" + "、".join(str(i + 1) for i in indices) + "项）"
    return label
