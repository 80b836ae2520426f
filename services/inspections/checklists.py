"""Checklist templates as data (layers/data/checklists/*.yaml): per site category, versioned.

A record names the template and version it was filled with; its answers are checked against that
version's items, so an answer to a question the version does not hold is refused with its id.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from services.errors import InvalidParameter, NotFound

FOLDER = Path(__file__).resolve().parents[2] / "layers" / "data" / "checklists"
ANSWER_KINDS = ("yes-no", "number", "text")
MAX_TEXT = 2000


@dataclass(frozen=True)
class Item:
    id: str
    zh: str
    en: str
    answer: str
    basis: str
    check: bool


@dataclass(frozen=True)
class Version:
    template: str
    version: int
    title_zh: str
    title_en: str
    items: tuple[Item, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"template": self.template, "version": self.version, "title_zh": self.title_zh,
                "title_en": self.title_en, "items": [vars(i) for i in self.items]}


@lru_cache(maxsize=1)
def templates() -> dict[str, dict[int, Version]]:
    """Every template's versions, read once from the data files (a malformed file raises ValueError)."""
    out: dict[str, dict[int, Version]] = {}
    for path in sorted(FOLDER.glob("*.yaml")):
        if path.name == "finding_types.yaml":
            continue
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        name = doc["template"]
        if name != path.stem:
            raise ValueError(f"{path.name}: template {name!r} must be named as its file")
        versions: dict[int, Version] = {}
        for v in doc["versions"]:
            items = tuple(Item(i["id"], i["zh"], i["en"], i["answer"], i["basis"], bool(i.get("check", False)))
                          for i in v["items"])
            for i in items:
                if i.answer not in ANSWER_KINDS:
                    raise ValueError(f"{path.name} v{v['version']} item {i.id}: answer {i.answer!r} "
                                     f"is not one of {ANSWER_KINDS}")
            versions[int(v["version"])] = Version(name, int(v["version"]), doc["title_zh"], doc["title_en"], items)
        out[name] = versions
    return out


@lru_cache(maxsize=1)
def finding_types() -> dict[str, dict[str, str]]:
    """Finding type id -> its Chinese and English names."""
    doc = yaml.safe_load((FOLDER / "finding_types.yaml").read_text(encoding="utf-8"))
    return {t["id"]: {"zh": t["zh"], "en": t["en"]} for t in doc["types"]}


def latest(template: str) -> Version:
    """The newest version of ``template``; 404 naming the known templates."""
    versions = templates().get(template)
    if not versions:
        raise NotFound(f"checklist template {template!r} does not exist; known: {sorted(templates())}")
    return versions[max(versions)]


def get(template: str, version: int) -> Version:
    """One version of a template; 4xx naming the template or the version when unknown."""
    versions = templates().get(template)
    if not versions:
        raise InvalidParameter(f"checklist template {template!r} does not exist; known: {sorted(templates())}")
    if version not in versions:
        raise InvalidParameter(f"checklist template {template!r} has no version {version}; "
                               f"versions: {sorted(versions)}")
    return versions[version]


def check_answers(version: Version, answers: Any, where: str = "answers") -> dict[str, Any]:
    """``answers`` if each names an item of ``version`` with a value of the item's kind; else a 400
    naming the first question that is not in the version or whose answer has the wrong kind."""
    if not isinstance(answers, dict):
        raise InvalidParameter(f"{where}: expected an object of question id -> answer")
    items = {i.id: i for i in version.items}
    for qid, value in answers.items():
        item = items.get(qid)
        if item is None:
            raise InvalidParameter(f"{where}: question {qid!r} is not in checklist {version.template!r} "
                                   f"version {version.version} (its questions: {list(items)})")
        ok = (isinstance(value, bool) if item.answer == "yes-no"
              else isinstance(value, (int, float)) and not isinstance(value, bool) if item.answer == "number"
              else isinstance(value, str) and len(value) <= MAX_TEXT)
        if value is not None and not ok:
            raise InvalidParameter(f"{where}.{qid}: expected a {item.answer} answer, got {str(value)[:40]!r}")
    return answers


def check_finding_type(kind: Any, where: str) -> str:
    """``kind`` if it is a known finding type, else a 400 naming the allowed ones."""
    types = finding_types()
    if kind not in types:
        raise InvalidParameter(f"{where}: finding type {kind!r} is not one of {list(types)}")
    return str(kind)
