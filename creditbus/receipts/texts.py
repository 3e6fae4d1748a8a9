"""The Chinese messages of receipts, and the masked value a rejection shows.

Receipts are read by the units' clerks, so their `message` is Chinese, in the words of the
import error report (`creditbus.publish.messages`): ``<字段>“<值>”：<问题>``. The value shown
is masked where it is personal data (identity number: first 6 and last 4 kept; name: first
character kept), every other value has ID-like runs masked and is cut to 30 characters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from creditbus.contract.reasons import message_zh
from creditbus.publish.messages import PROBLEMS, field_label, shown

ACCEPTED_TEXT: Final = "已接收，已记入信用档案（档案版本 {version}）"
DUPLICATE_EXACT_TEXT: Final = "重复报送：同一事件编号已接收过，未重复记入档案"
DUPLICATE_CONTENT_TEXT: Final = "内容重复：与该记录已记入档案的内容相同，未产生新版本"

RECEIPT_PROBLEMS: Final[dict[str, str]] = {
    "RETRACT_UNKNOWN_RECORD": "要撤销的记录在本单位已报送的记录中不存在，请核对记录编号",
    "UNEXPECTED_SCHEMA": "不是信用事件（CreditEvent）消息",
    "INTERNAL_MESSAGE_INVALID": "总线内部消息无法读取，请联系信用办",
    "SEAL_UNKNOWN_KEY": "加密所用的公钥不是总线当前的公钥，请更新公钥后重新报送",
    "SEAL_INVALID": "加密字段无法解密（数据被改动或格式不对）",
    "WIRE_EMPTY": "消息为空",
    "WIRE_UNKNOWN_FRAMING": "消息格式无法识别（不是 Avro 编码的信用事件）",
    "WIRE_UNKNOWN_FINGERPRINT": "消息使用的数据规范版本总线不认识",
    "WIRE_UNKNOWN_SCHEMA_ID": "消息使用的数据规范编号总线不认识",
    "WIRE_TRUNCATED": "消息不完整（被截断）",
    "WIRE_AVRO_INVALID": "消息内容与数据规范不符，无法解码",
}
"""Reasons decided by the bus that the import report never shows (it validates before)."""



def masked_value(field: str | None, datum: Mapping[str, Any] | None) -> str | None:
    """The value of `field` in a decoded event, as a receipt may show it (masked), or None."""
    if field is None or not isinstance(datum, Mapping):
        return None
    value: Any = datum
    for part in field.split("."):
        if isinstance(value, tuple) and len(value) == 2:  # tagged content: (record, fields)
            value = value[1]
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return shown(field, value).strip("“”")


def rejection_text(reason: str, field: str | None, value: str | None) -> str:
    """``<字段>“<值>”：<问题>`` (the value already masked), or ``<问题>`` for the whole event."""
    problem = (PROBLEMS.get(reason) or RECEIPT_PROBLEMS.get(reason) or message_zh(reason)
               or f"不符合要求（{reason}）")
    if field is None:
        return problem
    label = field_label(field)
    shown_value = f"“{value}”" if value is not None else ""
    return f"{label}{shown_value}：{problem}"


def accepted_text(version: int) -> str:
    return ACCEPTED_TEXT.format(version=version)
