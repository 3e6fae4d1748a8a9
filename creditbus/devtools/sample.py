"""Seeded, realistic sample department data, for `make demo` and the tests.

`sample_rows(unit, n, seed)` gives import rows (dicts keyed by the Chinese column headers of
docs/import.md) as a department would keep them; `sample_events(n, seed)` gives CreditEvent
datums for every group of the notice that has a responsible unit. Identity numbers are
fictitious but valid (Ganzhou division codes, real birth dates, correct check characters).
Everything is derived from the seed alone: the same call gives the same data on any day.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from creditbus.catalog import Catalog, default_catalog
from creditbus.contract.canonical import derive_event_id
from creditbus.identity import make_resident_id, make_uscc
from creditbus.identity.divisions import division_table
from creditbus.identity.uscc import ALPHABET
from creditbus.publish.row_events import COLUMNS, COLUMNS_BY_KEY, RowConverter, keyed_row

ANCHOR = date(2024, 12, 31)
"""The latest date in sample data (fixed, so that samples do not depend on the day)."""
EARLIEST = date(2012, 1, 1)

HEADERS: tuple[str, ...] = tuple(c.zh for c in COLUMNS)
"""Every import column, in the order of the table (the header row of sample files)."""

SURNAMES = (
    "刘 陈 黄 钟 谢 曾 赖 郭 周 李 王 张 杨 邱 温 肖 罗 朱 廖 何 林 徐 胡 宋 叶 "
    "彭 蓝 邓 吴 卢 曹 袁 许 邹 孙 潘 汪 蔡 欧阳 赵 龚 严 傅 饶 石 江 丁 魏 熊 管"
).split()
GIVEN = (
    "建华 晓燕 志明 丽萍 文涛 凡荣 美玲 永强 国平 海波 春梅 德胜 秀英 伟 芳 "
    "敏 静 磊 军 洋 勇 艳 杰 娟 涛 明 超 霞 平 刚 桂英 玉兰 红梅 小红 金凤 立新 "
    "卫东 建国 志强 俊 婷 欣怡 子涵 浩然 宇轩 梓萱 雨桐 思远 嘉怡 晨 瑶 鑫 琳 斌 "
    "辉 亮 倩 颖 峰 慧 健 萍 林 华 英 荣 发 贵 福 禄 才"
).split()
COUNTIES = ("章贡区", "南康区", "赣县区", "信丰县", "大余县", "上犹县", "于都县", "兴国县",
            "宁都县", "瑞金市", "龙南市", "会昌县", "寻乌县", "石城县")
FIRM_WORDS = ("恒达", "安平", "诚信", "赣江", "章贡", "红都", "客家", "宏远", "信达", "同创",
              "嘉和", "鑫源", "华瑞", "正元", "广联", "龙腾", "永安", "金盛", "腾飞", "合力")


@dataclass(frozen=True)
class GroupProfile:
    """What records of one group look like."""

    employer: tuple[str, ...]
    """Employer name templates with {county} and {word}."""
    employer_dept: str
    """USCC registration department of employers: 1 public body, 3 law firm, 9 enterprise."""
    employer_type: str
    positions: tuple[str, ...]
    law: str
    facts: tuple[str, ...]
    penalty_types: tuple[str, ...]
    qualification: str
    courses: tuple[str, ...]
    abbr: str
    """Of the decision numbers (赣市<abbr>〔2024〕7号)."""


PROFILES: dict[str, GroupProfile] = {
    "civil_servant": GroupProfile(
        employer=("{county}人民政府办公室", "{county}发展和改革委员会", "{county}财政局",
                  "{county}自然资源局"),
        employer_dept="1",
        employer_type="1",
        positions=("科员", "一级科员", "四级主任科员", "科长", "副局长"),
        law="《中华人民共和国公职人员政务处分法》",
        facts=("违反中央八项规定精神，违规接受管理服务对象宴请。",
               "工作中不担当不作为，造成不良影响。", "违规发放津贴补贴。"),
        penalty_types=("警告", "记过", "记大过", "降级"),
        qualification="公务员登记",
        courses=("公务员初任培训", "廉政教育专题培训"),
        abbr="纪处",
    ),
    "legal_rep": GroupProfile(
        employer=("赣州{word}建材有限公司", "{county}{word}食品有限公司",
                  "赣州{word}矿业有限公司", "{county}{word}建设工程有限公司"),
        employer_dept="9",
        employer_type="1",
        positions=("法定代表人", "总经理", "董事长", "安全生产负责人"),
        law="《中华人民共和国安全生产法》",
        facts=("未按规定对从业人员进行安全生产教育和培训。",
               "生产经营场所存在重大事故隐患未及时排除。",
               "销售不符合食品安全标准的食品。",
               "未依法履行环境影响评价手续擅自开工建设。"),
        penalty_types=("警告", "罚款", "责令停产停业"),
        qualification="安全生产知识和管理能力考核合格证",
        courses=("安全生产管理人员培训", "企业负责人食品安全培训"),
        abbr="罚决字",
    ),
    "lawyer": GroupProfile(
        employer=("江西{word}律师事务所", "江西{county}{word}律师事务所"),
        employer_dept="3",
        employer_type="1",
        positions=("专职律师", "合伙人律师", "律师事务所主任"),
        law="《中华人民共和国律师法》第四十八条",
        facts=("代理民事案件期间私自接受委托、私自收取费用。", "同时在两个律师事务所执业。",
               "利用与法官的特殊关系影响依法办理案件。"),
        penalty_types=("警告", "罚款", "没收违法所得", "停止执业"),
        qualification="律师执业证",
        courses=("律师继续教育", "刑事辩护实务培训"),
        abbr="司罚决字",
    ),
    "teacher": GroupProfile(
        employer=("{county}第一中学", "{county}第二中学", "{county}实验小学",
                  "赣州市{word}学校"),
        employer_dept="1",
        employer_type="2",
        positions=("语文教师", "数学教师", "英语教师", "班主任", "教研组长"),
        law="《中小学教师违反职业道德行为处理办法》",
        facts=("组织学生参加有偿补课。", "体罚学生造成不良影响。", "收受学生家长礼品礼金。"),
        penalty_types=("警告", "记过", "降低岗位等级"),
        qualification="教师资格证",
        courses=("国培计划骨干教师培训", "班主任能力提升培训"),
        abbr="教处字",
    ),
    "physician": GroupProfile(
        employer=("{county}人民医院", "{county}中医院", "赣州市{word}医院"),
        employer_dept="1",
        employer_type="2",
        positions=("主治医师", "副主任医师", "主任医师", "住院医师"),
        law="《中华人民共和国医师法》",
        facts=("未按规定书写病历。", "违反诊疗规范造成医疗差错。"),
        penalty_types=("警告", "罚款", "暂停执业活动"),
        qualification="医师执业证书",
        courses=("住院医师规范化培训", "院感防控专题培训"),
        abbr="卫医罚字",
    ),
    "tax_agent": GroupProfile(
        employer=("江西{word}税务师事务所有限公司", "{county}{word}财税咨询有限公司"),
        employer_dept="9",
        employer_type="1",
        positions=("税务师", "项目经理", "所长"),
        law="《涉税专业服务监管办法（试行）》",
        facts=("出具虚假涉税鉴证报告。", "违规代理纳税申报造成少缴税款。"),
        penalty_types=("警告", "罚款", "暂停从事涉税服务"),
        qualification="税务师职业资格证书",
        courses=("税务师继续教育", "个人所得税汇算实务"),
        abbr="税罚字",
    ),
    "fire_engineer": GroupProfile(
        employer=("赣州{word}消防技术服务有限公司", "{county}{word}消防检测有限公司"),
        employer_dept="9",
        employer_type="1",
        positions=("一级注册消防工程师", "二级注册消防工程师", "技术负责人"),
        law="《注册消防工程师管理规定》",
        facts=("在消防设施检测报告中出具虚假结论。", "未按规定开展消防设施维护保养。"),
        penalty_types=("警告", "罚款", "暂停执业"),
        qualification="注册消防工程师资格证书",
        courses=("注册消防工程师继续教育", "消防设施检测实务"),
        abbr="消罚字",
    ),
    "auditor": GroupProfile(
        employer=("江西{word}会计师事务所", "赣州{word}会计师事务所有限公司"),
        employer_dept="9",
        employer_type="1",
        positions=("注册会计师", "审计项目经理", "部门经理"),
        law="《中华人民共和国注册会计师法》",
        facts=("审计程序执行不到位，出具不恰当审计意见。", "未保持应有的职业谨慎。"),
        penalty_types=("警告", "罚款", "暂停执行业务"),
        qualification="注册会计师执业证书",
        courses=("注册会计师后续教育", "政府审计实务培训"),
        abbr="财罚字",
    ),
    "real_estate_agent": GroupProfile(
        employer=("赣州{word}房地产经纪有限公司", "{county}{word}置业顾问有限公司"),
        employer_dept="9",
        employer_type="1",
        positions=("房地产经纪人", "房地产经纪人协理", "门店经理"),
        law="《房地产经纪管理办法》",
        facts=("发布虚假房源信息。", "未按规定公示服务项目和收费标准。",
               "对交易当事人隐瞒真实房屋交易信息。"),
        penalty_types=("警告", "罚款", "没收违法所得"),
        qualification="房地产经纪人职业资格证书",
        courses=("房地产经纪人继续教育",),
        abbr="建罚字",
    ),
    "financial_practitioner": GroupProfile(
        employer=("赣州{word}农村商业银行股份有限公司", "{county}{word}村镇银行",
                  "赣州{word}小额贷款有限公司"),
        employer_dept="9",
        employer_type="1",
        positions=("客户经理", "信贷员", "支行行长", "理财经理"),
        law="《中华人民共和国商业银行法》",
        facts=("违规发放贷款。", "向客户误导销售理财产品。", "违规为客户提供过桥资金。"),
        penalty_types=("警告", "罚款", "禁止从事银行业工作"),
        qualification="银行业专业人员职业资格证书",
        courses=("反洗钱专题培训", "合规经营培训"),
        abbr="金罚字",
    ),
    "tour_guide": GroupProfile(
        employer=("瑞金{word}旅行社有限公司", "赣州{word}国际旅行社有限公司",
                  "{county}{word}旅行社"),
        employer_dept="9",
        employer_type="1",
        positions=("导游", "领队", "计调"),
        law="《导游管理办法》",
        facts=("未按旅游合同约定提供导游服务。", "擅自变更旅游行程。"),
        penalty_types=("警告", "罚款", "暂扣导游证"),
        qualification="导游证",
        courses=("红色旅游讲解员培训", "导游业务能力提升培训"),
        abbr="文旅罚字",
    ),
}
DEFAULT_PROFILE = PROFILES["legal_rep"]

CATEGORY_FACTS: dict[str, str] = {
    "unlicensed_practice": "未取得相应执业资格在{org}从事诊疗活动。",
    "patient_privacy_leak": "违规向无关人员提供患者病历资料，泄露患者隐私。",
    "illegal_charging": "超标准收取诊疗费用{amount}元。",
    "red_envelope": "在诊疗活动中收受患者红包{amount}元。",
    "certificate_renting": "将执业资格证书挂靠于{org}，本人未在该单位实际执业。",
    "forced_shopping": "带团期间诱导、强迫游客购物。",
    "route_change": "擅自变更旅游行程，减少合同约定的游览景点。",
    "tourist_rights_infringement": "带团期间辱骂游客，侵害旅游者合法权益。",
    "severe_dishonesty_penalty": "所在企业{org}因严重违法失信行为受到行政处罚。",
    "punishment": "年度工作中出现重大失误，受到通报批评。",
}
# category -> (事项, 具体内容, 扩展属性); templates use {county}, {amount}, {year}, {org}.
NOTES: dict[str, tuple[str, str, dict[str, str]]] = {
    "basic_info": (
        "个人基本信息", "学历：本科；政治面貌：群众；现居住地：{county}。",
        {"education": "本科"},
    ),
    "integrity": (
        "廉政记录", "年度廉政谈话已完成，未发现违纪违法问题。", {"result": "无"},
    ),
    "professional_credit": (
        "职业信用记录", "执业期间无不良信用记录。", {"rating": "良好"},
    ),
    "business_info": (
        "业务信息", "本年度承办业务{amount}件，均按规定办结。", {"cases": "{amount}"},
    ),
    "social_service": (
        "社会服务信息", "参加{county}法律援助值班服务。", {"hours": "24"},
    ),
    "public_welfare": (
        "参加社会公益活动情况", "参加{county}志愿服务活动。", {"activity": "志愿服务"},
    ),
    "conduct_compliance": (
        "职业规范遵守情况", "遵守中小学教师职业行为十项准则，无违规情形。",
        {"result": "遵守"},
    ),
    "fire_patrol": (
        "日常防火巡查", "所服务单位防火巡查记录完整，消防通道畅通，巡查到位。",
        {"result": "到位", "site": "{county}某商业综合体"},
    ),
    "hazard_rectification": (
        "火灾隐患整改", "督促所服务单位完成火灾隐患整改，经复查整改到位。",
        {"result": "到位"},
    ),
    "other": ("其他信用信息", "按期参加信用承诺，无其他不良信息。", {}),
    "dishonest_debtor": (
        "失信被执行人", "经赣州市中级人民法院依法纳入失信被执行人名单。",
        {"case_number": "（{year}）赣07执{amount}号", "court": "赣州市中级人民法院"},
    ),
    "bankruptcy_fault": (
        "企业破产清算责任", "因其违法违规经营导致所在企业{org}破产清算。",
        {"case_number": "（{year}）赣07破{amount}号"},
    ),
}
# The column an update changes (the first one the row fills), and what a retraction keeps.
UPDATABLE = ("处罚内容", "具体内容", "投诉事由", "职务岗位", "培训项目", "荣誉名称", "资格名称",
             "考核结果")
RETRACTION_KEPT = ("姓名", "身份证号码", "工作单位", "统一社会信用代码", "人群类别", "信息类别",
                   "记录编号", "严重程度")
SEVERITY_WEIGHTS = (("轻微", 2), ("一般", 6), ("严重", 2))
# Relative weights of new records by content kind (penalties are what the bus is mostly for).
KIND_WEIGHTS = {"penalty": 30, "career": 12, "training": 14, "assessment": 12, "reward": 8,
                "complaint": 6, "qualification": 8, "note": 10}


@dataclass
class _Person:
    id_number: str
    name: str
    birth: date
    organisation: str
    uscc: str


class _Generator:
    def __init__(self, seed: int, catalog: Catalog) -> None:
        self.rng = random.Random(seed)
        self.catalog = catalog
        table = division_table()
        self.divisions = [c for c in table.names if c.startswith("3607") and not c.endswith("00")
                          and c != "360701"]
        self.ids: set[str] = set()
        self.counter = 0

    # -- people and organisations --

    def person(self, group: str) -> _Person:
        rng = self.rng
        profile = PROFILES.get(group, DEFAULT_PROFILE)
        while True:
            birth = date(1962, 1, 1) + timedelta(days=rng.randrange(365 * 36))
            number = make_resident_id(rng.choice(self.divisions), birth, rng.randrange(1000))
            if number not in self.ids:
                self.ids.add(number)
                break
        organisation = self.organisation(profile)
        dept, kind = profile.employer_dept, profile.employer_type
        uscc = make_uscc(self.org_code(), number[:6], dept, kind)
        return _Person(number, rng.choice(SURNAMES) + rng.choice(GIVEN), birth, organisation, uscc)

    def organisation(self, profile: GroupProfile) -> str:
        template = self.rng.choice(profile.employer)
        return template.format(county=self.rng.choice(COUNTIES), word=self.rng.choice(FIRM_WORDS))

    def org_code(self) -> str:
        return "".join(self.rng.choice(ALPHABET) for _ in range(9))

    def day(self, after: date, before: date = ANCHOR) -> date:
        start = max(after, EARLIEST)
        span = (before - start).days
        return start + timedelta(days=self.rng.randrange(max(span, 1)))

    # -- records --

    def new_row(self, unit: str, group: str, person: _Person, abbr: str) -> dict[str, Any]:
        rng = self.rng
        categories = self.catalog.group(group).required_categories
        by_kind: dict[str, list[str]] = {}
        for code in categories:
            by_kind.setdefault(self.catalog.category(code).content_kind, []).append(code)
        kinds = list(by_kind)
        kind = rng.choices(kinds, weights=[KIND_WEIGHTS[k] for k in kinds])[0]
        category = self.catalog.category(rng.choice(by_kind[kind]))
        group_entry = self.catalog.group(group)
        self.counter += 1
        earliest = date(person.birth.year + 22, person.birth.month, 1)
        row: dict[str, Any] = {
            "姓名": person.name,
            "身份证号码": person.id_number,
            "工作单位": person.organisation,
            "统一社会信用代码": person.uscc,
            # departments write codes or Chinese names: both must work
            "人群类别": group_entry.name_zh if rng.random() < 0.7 else group,
            "信息类别": category.name_zh if rng.random() < 0.8 else category.code,
            "记录编号": f"{abbr}-{kind[:2].upper()}-{self.counter:06d}",
            "操作(新增/撤销)": "新增",
        }
        if category.dishonesty:
            row["严重程度"] = rng.choices(*zip(*SEVERITY_WEIGHTS, strict=True))[0]
        fact_day = self.day(earliest)
        getattr(self, f"_{kind}")(row, unit, group, category.code, person, fact_day)
        if kind != "note" and rng.random() < 0.5:
            row["发生日期"] = fact_day
        return row

    def _authority(self, unit: str) -> tuple[str, str]:
        entry = self.catalog.unit(unit)
        name = next((a for a in entry.aliases if a.startswith(("赣州", "中共赣州", "国家"))),
                    entry.name_zh)
        seed = sum(ord(c) for c in unit) * 7919
        code = "".join(ALPHABET[(seed // (i + 1)) % 31] for i in range(9))
        return name, make_uscc(code, entry.division or "360700", "1", "1")

    def _penalty(self, row: dict[str, Any], unit: str, group: str, category: str,
                 person: _Person, day: date) -> None:
        rng = self.rng
        profile = PROFILES.get(group, DEFAULT_PROFILE)
        amount = rng.choice((500, 1000, 2000, 3000, 5000, 10000, 20000))
        fact = CATEGORY_FACTS.get(category) or rng.choice(profile.facts)
        most = min(3, len(profile.penalty_types))
        types = rng.sample(profile.penalty_types, rng.randint(1, most))
        fined = "罚款" in types
        authority, authority_uscc = self._authority(unit)
        number = f"赣市{profile.abbr}〔{day.year}〕{rng.randint(1, 300)}号"
        row.update({
            "决定书文号": number,
            "违法事实": fact.format(org=self.organisation(profile), amount=amount),
            "处罚依据": profile.law,
            "处罚类别": "、".join(types),
            "处罚内容": "给予" + "、".join(types)
            + (f"，处罚款人民币{amount}元" if fined else "") + "。",
            "罚款金额（元）": Decimal(amount).quantize(Decimal("0.01")) if fined else None,
            "处罚决定日期": day,
            "公示截止期": (day.replace(year=day.year + rng.choice((1, 3))) if day.day < 29
                       and rng.random() < 0.6 else None),
            "处罚机关": authority,
            "处罚机关统一社会信用代码": authority_uscc if rng.random() < 0.8 else None,
            "信息来源": number if rng.random() < 0.5 else None,
        })

    def _assessment(self, row: dict[str, Any], unit: str, group: str, category: str,
                    person: _Person, day: date) -> None:
        year = min(day.year, ANCHOR.year - 1)
        result = self.rng.choices(("优秀", "称职", "基本称职", "不称职"), weights=(2, 7, 1, 0.3))[0]
        row.update({"考核年度": year, "考核结果": result, "考核单位": person.organisation,
                    "发生日期": date(year + 1, 1, self.rng.randint(5, 28))})

    def _career(self, row: dict[str, Any], unit: str, group: str, category: str,
                person: _Person, day: date) -> None:
        profile = PROFILES.get(group, DEFAULT_PROFILE)
        ended = self.rng.random() < 0.4
        row.update({
            "从业单位": person.organisation if not ended else self.organisation(profile),
            "职务岗位": self.rng.choice(profile.positions),
            "起始日期": day,
            "终止日期": self.day(day + timedelta(days=30)) if ended and day < date(2024, 6, 1)
            else None,
        })

    def _reward(self, row: dict[str, Any], unit: str, group: str, category: str,
                person: _Person, day: date) -> None:
        level = self.rng.choice(("国家级", "省级", "市级", "县级"))
        titles = ("先进工作者", "优秀共产党员", "诚信示范个人", "岗位能手", "三八红旗手")
        issuer = {"国家级": "人力资源和社会保障部", "省级": "江西省人民政府",
                  "市级": "赣州市人民政府"}.get(level, self.rng.choice(COUNTIES) + "人民政府")
        row.update({"荣誉名称": f"{day.year}年度{self.rng.choice(titles)}", "奖励级别": level,
                    "授予机关": issuer, "授予日期": day})

    def _complaint(self, row: dict[str, Any], unit: str, group: str, category: str,
                   person: _Person, day: date) -> None:
        closed = self.rng.random() < 0.8
        row.update({
            "受理日期": day,
            "投诉事由": self.rng.choice(
                ("服务态度差", "未按约定提供服务", "收费不透明", "办事拖延")
            ),
            "处理结果": self.rng.choice(("经调查不属实，已答复投诉人。", "经调解双方达成一致。",
                                         "责令改正并约谈。")) if closed else None,
            "是否属实": self.rng.choice(("是", "否")) if closed else None,
        })

    def _training(self, row: dict[str, Any], unit: str, group: str, category: str,
                  person: _Person, day: date) -> None:
        profile = PROFILES.get(group, DEFAULT_PROFILE)
        row.update({"培训项目": f"{day.year}年{self.rng.choice(profile.courses)}",
                    "培训机构": self.rng.choice(("赣州市委党校", "江西省继续教育中心",
                                                 "赣南师范大学继续教育学院", "赣州市行业协会")),
                    "学时": self.rng.choice((8, 12, 16, 24, 32, 40)) + self.rng.choice((0, 0.5)),
                    "完成日期": day})

    def _qualification(self, row: dict[str, Any], unit: str, group: str, category: str,
                       person: _Person, day: date) -> None:
        profile = PROFILES.get(group, DEFAULT_PROFILE)
        authority, _ = self._authority(unit)
        limited = self.rng.random() < 0.5
        row.update({
            "证书编号": f"{day.year}3607{self.rng.randrange(10**8):08d}",
            "资格名称": profile.qualification,
            "发证机关": authority,
            "发证日期": day,
            "有效期至": day.replace(year=day.year + 5) if limited and day.day < 29 else None,
            "证书状态": self.rng.choice(("有效", "有效", "有效", "注销", "暂停")),
        })

    def _note(self, row: dict[str, Any], unit: str, group: str, category: str,
              person: _Person, day: date) -> None:
        default = (self.catalog.category(category).name_zh, "按规定归集的信用信息。", {})
        title, detail, attrs = NOTES.get(category, default)
        values = {"county": self.rng.choice(COUNTIES), "amount": self.rng.randint(3, 120),
                  "year": day.year, "org": self.organisation(PROFILES.get(group, DEFAULT_PROFILE))}
        row.update({
            "事项": title,
            "具体内容": detail.format(**values),
            "发生日期": day,
            "扩展属性": "；".join(f"{k}={v.format(**values)}" for k, v in attrs.items()) or None,
        })

    def update_of(self, row: dict[str, Any], version: int) -> dict[str, Any]:
        """A later version of a record: same record id, changed content."""
        new = dict(row)
        note = f"（第{version}次更正）"
        for column in UPDATABLE:
            if new.get(column):
                new[column] = (str(new[column]) + note) if column != "考核结果" else (
                    "称职" if new[column] != "称职" else "优秀")
                if column == "考核结果":
                    new["考核单位"] = str(new.get("考核单位") or "") + note
                break
        return new

    def retraction_of(self, row: dict[str, Any]) -> dict[str, Any]:
        base = {k: row[k] for k in RETRACTION_KEPT if k in row}
        decided = row.get("处罚决定日期") or row.get("发生日期") or EARLIEST
        base.update({
            "操作(新增/撤销)": "撤销",
            "发生日期": self.day(decided + timedelta(days=1)) if decided < ANCHOR else ANCHOR,
            "信息来源": f"赣市行复决字〔{ANCHOR.year}〕{self.rng.randint(1, 99)}号："
            "信用修复，撤销公示",
        })
        return base

    def rows(self, unit: str, groups: Sequence[str], n: int, abbr: str) -> list[dict[str, Any]]:
        rng = self.rng
        people = [(g, self.person(g)) for g in
                  (groups[i % len(groups)] for i in range(max(1, n // 4)))]
        rows: list[dict[str, Any]] = []
        upserts: list[int] = []  # indexes of rows that may get an update or a retraction
        versions: dict[str, int] = {}
        retracted: set[str] = set()
        while len(rows) < n:
            roll = rng.random()
            if upserts and roll < 0.04:
                original = rows[rng.choice(upserts)]
                record = original["记录编号"]
                if record in retracted:
                    continue
                versions[record] = versions.get(record, 1) + 1
                rows.append(self.update_of(original, versions[record]))
            elif upserts and roll < 0.06:
                original = rows[rng.choice(upserts)]
                record = original["记录编号"]
                if record in retracted or "严重程度" not in original:
                    continue
                retracted.add(record)
                rows.append(self.retraction_of(original))
            else:
                group, person = rng.choice(people)
                rows.append(self.new_row(unit, group, person, abbr))
                upserts.append(len(rows) - 1)
        return rows


def _abbr(unit: str) -> str:
    return unit.upper().replace("_", "")[:6]


def sample_rows(
    unit: str, n: int, seed: int, *, catalog: Catalog | None = None
) -> list[dict[str, Any]]:
    """`n` import rows of `unit` (dicts keyed by the Chinese headers), about 4 % updates of
    earlier records and 2 % retractions; every row valid."""
    catalog = catalog if catalog is not None else default_catalog()
    groups = catalog.unit(unit).groups
    if not groups:
        raise ValueError(f"unit {unit!r} is responsible for no group; it has nothing to publish")
    return _Generator(seed, catalog).rows(unit, list(groups), n, _abbr(unit))


def publishing_pairs(catalog: Catalog) -> list[tuple[str, str]]:
    """(unit, group) for every group that has a responsible unit, city units first."""
    pairs = []
    for group in catalog.groups:
        units = catalog.responsible_units(group.code)
        for unit in sorted(units, key=lambda u: (u.kind != "city_unit", u.seq or 0, u.code)):
            pairs.append((unit.code, group.code))
    return pairs


def sample_events(
    n: int, seed: int, bad_fraction: float = 0.0, *, catalog: Catalog | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """`n` (unit, CreditEvent datum) pairs covering every group of the notice that has a
    responsible unit. Datums are complete (event_id derived, published_at set, content as the
    wire tuple). About `bad_fraction` of them are made invalid (wrong check digit, unknown
    category, a group the unit is not responsible for, a future date, a bad USCC, a blank
    name) yet still encode, for exercising the dead-letter path."""
    catalog = catalog if catalog is not None else default_catalog()
    rng = random.Random(seed)
    pairs = publishing_pairs(catalog)
    by_group: dict[str, list[str]] = {}
    for unit, group in pairs:
        by_group.setdefault(group, []).append(unit)
    groups = list(by_group)
    per_unit: dict[str, list[str]] = {}
    for i in range(n):
        group = groups[i % len(groups)]
        per_unit.setdefault(rng.choice(by_group[group]), []).append(group)
    out: list[tuple[str, dict[str, Any]]] = []
    for index, (unit, wanted) in enumerate(sorted(per_unit.items())):
        generator = _Generator(seed * 1000 + index, catalog)
        rows = generator.rows(unit, sorted(set(wanted)), len(wanted), _abbr(unit))
        converter = RowConverter(catalog, unit)
        last: dict[str, datetime] = {}  # record id -> published_at of its latest version
        for row in rows:
            datum = converter.convert(keyed_row(row))
            lag = timedelta(days=rng.randint(1, 20), hours=rng.randint(1, 8))
            published = datum["occurred_at"] + lag
            previous = last.get(datum["record_id"])
            if previous is not None and published <= previous:
                published = previous + timedelta(hours=1)  # versions in publication order
            last[datum["record_id"]] = published
            datum["published_at"] = published.astimezone(UTC)
            out.append((unit, datum))
    out.sort(key=lambda pair: pair[1]["published_at"])
    bad = round(n * bad_fraction)
    for position in rng.sample(range(len(out)), bad) if bad else []:
        unit, datum = out[position]
        out[position] = (unit, corrupt(datum, rng, catalog))
    for _, datum in out:
        datum["event_id"] = derive_event_id(datum)
    return out


def corrupt(datum: Mapping[str, Any], rng: random.Random, catalog: Catalog) -> dict[str, Any]:
    """A copy of `datum` broken in one of a few ways that validation rejects."""
    bad = dict(datum)
    person = dict(bad["person"])
    way = rng.randrange(6)
    if way == 0:  # wrong check character
        number = person["id_number"]
        person["id_number"] = number[:17] + ("0" if number[17] != "0" else "1")
    elif way == 1:
        bad["category"] = "no_such_category"
    elif way == 2:  # a group the unit is not responsible for
        unit = catalog.unit(bad["unit"])
        others = [g.code for g in catalog.groups if g.code not in unit.groups]
        bad["group"] = rng.choice(others)
    elif way == 3:
        bad["occurred_at"] = datetime(2999, 1, 1, tzinfo=UTC)
    elif way == 4:  # USCC with a letter outside the alphabet
        person["organisation_uscc"] = "91360702MA3AKL0I68"
    else:
        person["name"] = " "
    bad["person"] = person
    return bad


# --- files -------------------------------------------------------------------------------------


def write_rows(path: Path, rows: Iterable[Mapping[str, Any]], *, encoding: str = "utf-8-sig",
               headers: Sequence[str] = HEADERS) -> Path:
    """Write rows (keyed by header) as .xlsx or .csv (dates as YYYY-MM-DD, ID cells as text)."""
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet("信用档案")
        sheet.append(list(headers))
        for row in rows:
            sheet.append([_xlsx_cell(row.get(h)) for h in headers])
        book.save(path)
        return path
    import csv

    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        for row in rows:
            writer.writerow([_csv_cell(row.get(h)) for h in headers])
    return path


def write_sample_file(
    path: Path, unit: str, n: int, seed: int, *, catalog: Catalog | None = None
) -> Path:
    """`sample_rows(unit, n, seed)` written to `path` (.xlsx or .csv, by its suffix)."""
    return write_rows(Path(path), sample_rows(unit, n, seed, catalog=catalog))


def _xlsx_cell(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


__all__ = [
    "ANCHOR",
    "COLUMNS_BY_KEY",
    "HEADERS",
    "corrupt",
    "publishing_pairs",
    "sample_events",
    "sample_rows",
    "write_rows",
    "write_sample_file",
]
