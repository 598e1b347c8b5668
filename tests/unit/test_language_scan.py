"""Every sentence a person reads comes in Chinese and in English, never in a mix.

Three scans:
- the server's catalogue (core/text_table.py): both languages, Chinese in the
  zh-CN template, none in the en one, the same placeholders;
- the server's code: every `raise <DomainError subclass>(...)` passes a
  catalogue text (`say("key", ...)` with a known key), and no string literal
  in the code that talks to people mixes Chinese and Latin words;
- the web app's string tables: every key in both languages, Chinese in zh-CN,
  none in en.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orderchat.core import errors as core_errors
from orderchat.core.text_table import TEXTS
from orderchat.core.texts import Text, from_json, pick_language, placeholders, say

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "orderchat"
WEB_JS = SRC / "web" / "assets" / "js"
sys.path.insert(0, str(ROOT / "scripts"))

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
PLACEHOLDER = re.compile(r"\{[^{}]*\}")

# Where literals are sentences for people: a mix there is a bug.
PEOPLE_FACING = ("api", "core", "protocol", "realtime", "services")
# Literals that hold Chinese and Latin letters on purpose, each with its reason.
MIXED_ALLOWED = {
    # Role channels are titled by the role's Chinese name and its @handle, the
    # identifier people type to mention the role: one name, not two languages.
    "管理 #admin",
    "客服 #customer_service",
    "销售 #sales",
    "采购 #purchasing",
    "仓库 #warehouse",
    "物流 #logistics",
    "财务 #finance",
    "生产 #production",
    "质检 #qc",
    "审计 #audit",  # the channel of the daily chain anchors, titled like the role channels
    # The webhook account's display name: a name, shown as it is to everyone.
    "订单平台 Order platform",
}


# Web strings that are the same in both languages because they are names.
WEB_NAMES = {"OrderChat"}


def _words(template: str) -> str:
    return PLACEHOLDER.sub("", template)


def _has_words(template: str) -> bool:
    """Whether a template says anything besides its placeholders and punctuation."""
    return bool(re.search(r"[^\W\d_]", _words(template)))


@pytest.mark.parametrize("key", sorted(TEXTS))
def test_every_catalogue_text_is_chinese_and_english_with_the_same_placeholders(key: str) -> None:
    zh, en = TEXTS[key]
    assert zh.strip() and en.strip(), key
    if _has_words(zh):
        assert HAN.search(_words(zh)), f"{key}: the zh-CN text has no Chinese: {zh!r}"
    assert not CJK.search(en), f"{key}: the en text has Chinese: {en!r}"
    assert placeholders(zh) == placeholders(en), key
    if key.startswith("note."):
        # The web app renders these itself (texts.js): plain {name} placeholders only.
        for template in (zh, en):
            assert all(re.fullmatch(r"\{\w+\}", p) for p in PLACEHOLDER.findall(template)), key


def test_keys_are_dotted_lower_case_names() -> None:
    for key in TEXTS:
        assert re.fullmatch(r"[a-z_]+(\.[a-z0-9_]+)+", key), key


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        if "client" in path.relative_to(SRC).parts[:1]:
            continue  # the SDK raises its own errors, built from the server's answers
        yield path, ast.parse(path.read_text(encoding="utf-8"))


def _domain_errors() -> set[str]:
    """Names of DomainError and every subclass defined anywhere in the server."""
    names = {
        name
        for name, value in vars(core_errors).items()
        if isinstance(value, type) and issubclass(value, core_errors.DomainError)
    }
    grew = True
    while grew:
        grew = False
        for _, tree in _modules():
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in names:
                    bases = {
                        b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                        for b in node.bases
                    }
                    if bases & names:
                        names.add(node.name)
                        grew = True
    return names


def _called(node: ast.expr) -> str | None:
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            return func.id
        if isinstance(func, ast.Attribute):
            return func.attr
    return None


def _is_catalogue_text(node: ast.expr) -> bool:
    """`say("known.key", ...)`, a text passed on (`exc.text`, a name), or a choice of them."""
    if isinstance(node, ast.IfExp):
        return _is_catalogue_text(node.body) and _is_catalogue_text(node.orelse)
    if _called(node) == "say":
        assert isinstance(node, ast.Call)
        (key, *_) = node.args
        keys = [key.body, key.orelse] if isinstance(key, ast.IfExp) else [key]
        return all(isinstance(k, ast.Constant) and k.value in TEXTS for k in keys)
    return isinstance(node, ast.Name | ast.Attribute) or (
        isinstance(node, ast.Call) and _called(node) not in ("str", "format")
    )


def test_every_domain_error_is_raised_with_a_catalogue_text() -> None:
    errors = _domain_errors()
    wrong = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            name = _called(node) if isinstance(node, ast.expr) else None
            if name not in errors:
                continue
            assert isinstance(node, ast.Call)
            args = node.args[1:] if name == "SignatureRejected" else node.args
            if name == "TooLargeBody":
                continue  # builds its catalogue text from the byte count it takes
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if not args:
                wrong.append(f"{where}: {name}() without a text")
            elif isinstance(args[0], ast.Constant | ast.JoinedStr | ast.BinOp):
                wrong.append(f"{where}: {name} with a string; use say('key', ...)")
            elif not _is_catalogue_text(args[0]):
                wrong.append(f"{where}: {name} with {ast.unparse(args[0])}")
    assert not wrong, "\n".join(wrong)


def test_every_say_names_a_catalogue_key() -> None:
    unknown = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _called(node) == "say" and node.args:
                key = node.args[0]
                keys = [key.body, key.orelse] if isinstance(key, ast.IfExp) else [key]
                for k in keys:
                    if isinstance(k, ast.Constant) and k.value not in TEXTS:
                        unknown.append(f"{path.relative_to(ROOT)}:{node.lineno}: {k.value}")
    assert not unknown, "\n".join(unknown)


def _docstrings(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def test_no_string_for_people_mixes_chinese_and_latin_words() -> None:
    mixed = []
    for path, tree in _modules():
        area = path.relative_to(SRC).parts[0]
        if area not in PEOPLE_FACING or path.name.startswith("text_table"):
            continue
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                not (isinstance(node, ast.Constant) and isinstance(node.value, str))
                or id(node) in skip
            ):
                continue
            words = _words(node.value)
            if HAN.search(words) and LATIN_WORD.search(words) and node.value not in MIXED_ALLOWED:
                mixed.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert not mixed, "\n".join(mixed)


def _web_tables() -> list[Path]:
    tables = sorted(WEB_JS.glob("ui/strings*.js"))
    return [*tables, WEB_JS / "ui" / "customer-strings.js", WEB_JS / "i18n.js"]


def _js_tables(path: Path) -> dict[str, dict[str, str]]:
    """The `"zh-CN": {...}` and `en: {...}` tables of a strings file, read with node."""
    script = """
const src = require("fs").readFileSync(process.argv[1], "utf8");
const tables = {};
const strings = {};
globalThis.localStorage = { getItem: () => null, setItem: () => {} };
const add = (t) => { for (const l of Object.keys(t)) Object.assign(strings[l] ??= {}, t[l]); };
const body = src
  .replace(/^import[^;]*;$/gm, "")
  .replace(/export /g, "")
  .replace(/addStrings\\(/g, "add(");
const grab = body.match(/const strings = (\\{[\\s\\S]*?\\n\\});/);
if (grab) add(eval("(" + grab[1] + ")"));
else eval(body);
process.stdout.write(JSON.stringify(strings));
"""
    done = subprocess.run(
        ["node", "-e", script, str(path)], capture_output=True, text=True, check=True, timeout=60
    )
    import json

    tables: dict[str, dict[str, str]] = json.loads(done.stdout)
    return tables


@pytest.mark.parametrize("path", _web_tables(), ids=lambda p: p.name)
def test_web_strings_come_in_both_languages_each_in_its_own(path: Path) -> None:
    tables = _js_tables(path)
    zh, en = tables.get("zh-CN", {}), tables.get("en", {})
    assert zh and en, f"{path.name}: no tables found"
    assert set(zh) == set(en), f"{path.name}: keys in one language only: {set(zh) ^ set(en)}"
    wrong = []
    for key in zh:
        words = PLACEHOLDER.sub("", zh[key])
        if re.search(r"[^\W\d_]", words) and not HAN.search(words) and zh[key] not in WEB_NAMES:
            wrong.append(f"{key} has no Chinese in zh-CN: {zh[key]!r}")
        if CJK.search(PLACEHOLDER.sub("", en[key])):
            wrong.append(f"{key} has Chinese in en: {en[key]!r}")
    assert not wrong, f"{path.name}:\n" + "\n".join(wrong)


def test_the_web_copy_of_the_note_texts_is_current() -> None:
    """`python scripts/texts_js.py` rewrites texts-table.js after a `note.*` change."""
    import texts_js

    assert (WEB_JS / "texts-table.js").read_text(encoding="utf-8") == texts_js.render()


def test_a_text_renders_in_each_language_and_round_trips_through_json() -> None:
    text = say(
        "stock.only_available_at_on_hand",
        available=2,
        sku="TENT-2",
        location="main",
        on_hand=2,
        held=say("stock.held_for_open_orders", reserved=1),
        wanted=5,
    )
    assert text.render("en") == (
        "only 2 of TENT-2 available at main (2 on hand, 1 of it reserved for open orders); "
        "cannot take 5"
    )
    assert (
        text.render("zh-CN")
        == "TENT-2 在 main 只有 2 件可用（在库 2，其中 1 件为未完成订单预留），无法取出 5 件"
    )
    again = from_json(text.to_json())
    assert isinstance(again, Text)
    assert again.render("zh-CN") == text.render("zh-CN")


def test_a_name_in_both_languages_shows_the_readers() -> None:
    line = say("note.stock_sku", sku="BAG-1", name={"zh-CN": "登山包", "en": "Backpack"})
    assert line.render("zh-CN") == "• BAG-1 登山包"
    assert line.render("en") == "• BAG-1 Backpack"


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "zh-CN"),
        ("", "zh-CN"),
        ("en", "en"),
        ("en-GB,en;q=0.9", "en"),
        ("zh-Hans-CN", "zh-CN"),
        ("fr-FR,en;q=0.5,zh;q=0.8", "zh-CN"),
        ("fr", "zh-CN"),
        ("en;q=bad, zh-TW;q=0.1", "zh-CN"),
    ],
)
def test_accept_language_picks_one_of_ours(header: str | None, language: str) -> None:
    assert pick_language(header) == language


def test_an_unknown_key_is_a_bug_caught_at_once() -> None:
    with pytest.raises(KeyError):
        say("no.such.text")


def _language_tables(value: object) -> Iterator[dict[str, str]]:
    if isinstance(value, dict):
        if "zh-CN" in value and "en" in value:
            yield value
        for inner in value.values():
            yield from _language_tables(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _language_tables(inner)


def test_order_event_texts_of_routes_and_workflows_keep_each_language_to_itself() -> None:
    import tomllib

    from orderchat.core.routing import ROUTES

    tables = [dict(route.text) for route in ROUTES.values() if route.text]
    for path in sorted((SRC / "workflows").glob("*.toml")):
        tables += _language_tables(tomllib.loads(path.read_text(encoding="utf-8")))
    assert tables
    for table in tables:
        zh, en = table["zh-CN"], table["en"]
        assert HAN.search(_words(zh)) or not _has_words(zh), table
        assert not CJK.search(_words(en)), table
        assert placeholders(zh) == placeholders(en), table
