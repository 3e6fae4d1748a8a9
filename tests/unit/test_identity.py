"""Identifiers: resident IDs (GB 11643-1999), USCC (GB 32100-2015), masking, person keys."""

from __future__ import annotations

import io
import logging
import pickle
import re
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditbus.identity import (
    IdentifierError,
    RedactingFilter,
    make_resident_id,
    make_uscc,
    mask_id,
    parse_resident_id,
    person_key,
    redact,
    validate_uscc,
)
from creditbus.identity.resident_id import check_char

TODAY = date(2024, 6, 1)

# Computed with make_resident_id and checked against the MOD 11-2 rule below.
ZHANGGONG_X = "36070219850612000X"  # 章贡区, 1985-06-12, seq 000 (female), check X
RUIJIN_X = "36078120010101006X"  # 瑞金市, 2001-01-01, seq 006 (female), check X


def error_of(func, text: str) -> IdentifierError:
    with pytest.raises(IdentifierError) as info:
        func(text)
    exc = info.value
    assert isinstance(exc, ValueError)
    secret = text.strip()
    for shown in (str(exc), exc.message, repr(exc)):
        if len(secret) >= 5:
            assert secret not in shown, "an error message shows the full number"
            assert secret.upper() not in shown
    return exc


# --- resident ID: valid numbers ---


def test_check_character_by_hand() -> None:
    # 36070219850612000: weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2
    # 3*7+6*9+0*10+7*5+0*8+2*4+1*2+9*1+8*6+5*3+0*7+6*9+1*10+2*5+0*8+0*4+0*2 = 266
    # 266 mod 11 = 2 -> "10X98765432"[2] = X
    assert check_char("36070219850612000") == "X"
    assert ZHANGGONG_X == make_resident_id("360702", date(1985, 6, 12), 0)


def test_valid_id_with_x_check_character() -> None:
    rid = parse_resident_id(ZHANGGONG_X, today=TODAY)
    assert rid.number == ZHANGGONG_X
    assert rid.division_code == "360702"
    assert rid.division_name == "章贡区"
    assert rid.in_ganzhou is True
    assert rid.birth_date == date(1985, 6, 12)
    assert rid.sex == "F"


def test_lowercase_x_and_whitespace_are_normalised() -> None:
    rid = parse_resident_id(f"  {RUIJIN_X.lower()}\n", today=TODAY)
    assert rid.number == RUIJIN_X
    assert rid.division_name == "瑞金市"


def test_sex_from_17th_digit() -> None:
    assert parse_resident_id(make_resident_id("360703", "19700101", 1), today=TODAY).sex == "M"
    assert parse_resident_id(make_resident_id("360703", "19700101", 2), today=TODAY).sex == "F"


@pytest.mark.parametrize(
    ("division", "name"),
    [("360704", "赣县区"), ("360721", "赣县"), ("360782", "南康市"), ("360783", "龙南市")],
)
def test_ganzhou_divisions_including_retired_codes(division: str, name: str) -> None:
    rid = parse_resident_id(make_resident_id(division, "19600229", 11), today=TODAY)
    assert (rid.division_name, rid.in_ganzhou, rid.birth_date) == (name, True, date(1960, 2, 29))


def test_unknown_but_plausible_division_is_accepted_outside_ganzhou() -> None:
    rid = parse_resident_id(make_resident_id("110105", "19900101", 21), today=TODAY)
    assert rid.division_code == "110105"
    assert rid.division_name is None
    assert rid.in_ganzhou is False


def test_unnamed_code_with_ganzhou_prefix_is_in_ganzhou() -> None:
    rid = parse_resident_id(make_resident_id("360799", "19900101", 21), today=TODAY)
    assert rid.in_ganzhou is True and rid.division_name is None


def test_repr_of_parsed_id_is_masked() -> None:
    rid = parse_resident_id(ZHANGGONG_X, today=TODAY)
    assert ZHANGGONG_X not in repr(rid)
    assert rid.masked == "360702********000X"


# --- resident ID: rejected numbers ---


def test_wrong_check_digit() -> None:
    wrong = ZHANGGONG_X[:17] + "1"
    assert error_of(parse_resident_id, wrong).code == "ID_CHECKSUM"


def test_impossible_birth_date() -> None:
    number = make_resident_id("360702", "19990230", 123)
    assert error_of(parse_resident_id, number).code == "ID_BIRTH_DATE"


def test_future_birth_date() -> None:
    number = make_resident_id("360702", "20300101", 123)
    exc = error_of(lambda t: parse_resident_id(t, today=TODAY), number)
    assert exc.code == "ID_BIRTH_DATE" and "future" in exc.message
    tomorrow = make_resident_id("360702", date.today() + timedelta(days=1), 5)
    assert error_of(parse_resident_id, tomorrow).code == "ID_BIRTH_DATE"


def test_birth_before_1900() -> None:
    number = make_resident_id("360702", "18991231", 123)
    assert error_of(parse_resident_id, number).code == "ID_BIRTH_DATE"


def test_legacy_15_digit_number_is_rejected_with_its_code() -> None:
    exc = error_of(parse_resident_id, "360702850612001")
    assert exc.code == "ID_LEGACY_15"
    assert "18" in exc.message and "convert" in exc.message


@pytest.mark.parametrize("text", ["", "3607021985061200", "36070219850612000X1"])
def test_wrong_length(text: str) -> None:
    assert error_of(parse_resident_id, text).code == "ID_LENGTH"


@pytest.mark.parametrize("text", ["36070219850612X00X", "3607021985O612000X", "36070219850612000Y"])
def test_wrong_characters(text: str) -> None:
    assert error_of(parse_resident_id, text).code == "ID_CHARSET"


@pytest.mark.parametrize("province", ["00", "10", "16", "24", "39", "47", "55", "60", "70", "99"])
def test_bad_province(province: str) -> None:
    number = make_resident_id(f"{province}0102", "19900101", 21)
    assert error_of(parse_resident_id, number).code == "ID_DIVISION"


@given(
    division=st.sampled_from(["360702", "360781", "110105", "440305", "820000"]),
    birth=st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
    seq=st.integers(0, 999),
)
def test_every_made_id_parses_back(division: str, birth: date, seq: int) -> None:
    number = make_resident_id(division, birth, seq)
    rid = parse_resident_id(number, today=TODAY)
    assert (rid.number, rid.division_code, rid.birth_date) == (number, division, birth)
    assert rid.sex == ("M" if seq % 2 else "F")


@given(birth=st.dates(min_value=date(1900, 1, 1), max_value=TODAY), seq=st.integers(0, 999),
       position=st.integers(0, 17), digit=st.sampled_from("0123456789X"))
def test_single_substitution_never_leaks_the_number(
    birth: date, seq: int, position: int, digit: str
) -> None:
    number = make_resident_id("360702", birth, seq)
    changed = number[:position] + digit + number[position + 1:]
    try:
        parse_resident_id(changed, today=TODAY)
    except IdentifierError as exc:
        assert changed not in str(exc) and number not in str(exc)
    else:
        assert changed == number  # MOD 11-2 detects every single substitution


def test_identifier_error_pickles() -> None:
    exc = IdentifierError("ID_CHECKSUM", "masked")
    again = pickle.loads(pickle.dumps(exc))
    assert (again.code, again.message) == ("ID_CHECKSUM", "masked")


def test_make_resident_id_rejects_bad_parts() -> None:
    for args in [("36070", "19900101", 1), ("360702", "1990011", 1), ("360702", "19900101", 1000)]:
        with pytest.raises(ValueError):
            make_resident_id(*args)


# --- USCC ---

HUAWEI = "914403001922038216"  # 华为技术有限公司 (published on its business licence)


def test_real_uscc_check_character_by_hand() -> None:
    # 9 1 4 4 0 3 0 0 1 9 2 2 0 3 8 2 1 with weights 3^i mod 31:
    # 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28
    # 9+3+36+108+0+78+0+0+20+261+50+26+0+72+80+60+28 = 831; 831 mod 31 = 25; 31-25 = 6
    assert validate_uscc(HUAWEI) == HUAWEI
    assert validate_uscc(" 91440300708461136t ") == "91440300708461136T"  # 深圳市腾讯计算机系统


def test_made_uscc_for_a_ganzhou_enterprise() -> None:
    code = make_uscc("MA35XXXXX")
    assert re.fullmatch(r"91360700MA35XXXXX[0-9A-Y]", code)
    assert validate_uscc(code) == code
    assert validate_uscc(code.lower()) == code


@pytest.mark.parametrize("letter", list("IOZSV"))
def test_uscc_with_excluded_letters_is_rejected(letter: str) -> None:
    code = "91360700MA35" + letter + "XXXX1"
    exc = error_of(validate_uscc, code)
    assert exc.code == "USCC_CHARSET" and repr(letter) in exc.message


def test_wrong_uscc_check_character() -> None:
    wrong = HUAWEI[:17] + "7"
    assert error_of(validate_uscc, wrong).code == "USCC_CHECKSUM"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("91440300192203821", "USCC_LENGTH"),
        ("B1440300192203821" + "0", "USCC_REGISTRATION_DEPT"),
        ("95440300192203821" + "0", "USCC_ORG_TYPE"),
        ("9144A300192203821" + "0", "USCC_DIVISION"),
    ],
)
def test_uscc_structure(text: str, code: str) -> None:
    assert error_of(validate_uscc, text).code == code


@pytest.mark.parametrize(
    ("dept", "kind"), [("1", "1"), ("3", "1"), ("5", "3"), ("9", "2"), ("Y", "1"), ("N", "2")]
)
def test_uscc_departments_and_types(dept: str, kind: str) -> None:
    code = make_uscc("12345678X", "360702", dept, kind)
    assert validate_uscc(code) == code


# --- masking ---


def test_mask_id() -> None:
    assert mask_id(ZHANGGONG_X) == "360702********000X"
    assert mask_id("360702850612001") == "36***********01"
    assert mask_id("12345") == "12*45"
    assert mask_id("123") == "***"


def test_redact_id_inside_a_sentence() -> None:
    text = f"申请人张三（身份证号{ZHANGGONG_X.lower()}）于2023年投诉，旧证360702850612001。"
    out = redact(text)
    assert ZHANGGONG_X.lower() not in out and "360702850612001" not in out
    assert "身份证号360702********000x）" in out
    assert "旧证36***********01。" in out
    assert "2023" in out


def test_redact_leaves_other_numbers() -> None:
    text = "phone 13800138000, amount 1234567890123456 and 20-digit 12345678901234567890"
    assert redact(text) == text


def test_redact_several_and_adjacent_letters() -> None:
    out = redact(f"ids:{ZHANGGONG_X},{RUIJIN_X}abc")
    assert out == "ids:360702********000X,360781********006Xabc"


def _logger_with_filter() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("creditbus.test.redaction")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_log_records_are_redacted_by_the_filter() -> None:
    logger, stream = _logger_with_filter()
    logger.info("rejected %s for unit %s", ZHANGGONG_X, "justice")
    logger.warning(f"inline {RUIJIN_X}")
    logger.error("dict %(id)s", {"id": "360702850612001"})
    try:
        raise ValueError(f"bad id {ZHANGGONG_X}")
    except ValueError:
        logger.exception("failed")
    out = stream.getvalue()
    for number in (ZHANGGONG_X, RUIJIN_X, "360702850612001"):
        assert number not in out
    assert "rejected 360702********000X for unit justice" in out
    assert "inline 360781********006X" in out
    assert "bad id 360702********000X" in out


def test_filter_survives_bad_format_args() -> None:
    logger, stream = _logger_with_filter()
    logger.info("two %s %s", ZHANGGONG_X)
    assert ZHANGGONG_X not in stream.getvalue()


# --- person key ---


def test_person_key_is_stable_hex_and_depends_on_the_key() -> None:
    key = person_key(ZHANGGONG_X, b"secret-a")
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert person_key(ZHANGGONG_X, b"secret-a") == key
    assert person_key(ZHANGGONG_X.lower(), b"secret-a") == key
    assert person_key(ZHANGGONG_X, b"secret-b") != key
    assert person_key(RUIJIN_X, b"secret-a") != key
    assert ZHANGGONG_X not in key


def test_person_key_known_answer() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"k", b"36070219850612000X", hashlib.sha256).hexdigest()
    assert person_key(ZHANGGONG_X, b"k") == expected


def test_person_key_needs_a_secret() -> None:
    with pytest.raises(ValueError):
        person_key(ZHANGGONG_X, b"")
