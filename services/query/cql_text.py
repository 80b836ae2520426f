"""The CQL2 text parser: pygeofilter's grammar and transformer, with its known defects corrected.

pygeofilter 0.4's CQL2 text grammar departs from the standard (OGC 21-065r2) in ways clients hit:

* ``a OR b AND c`` parses as ``(a OR b) AND c``; CQL2 gives AND the higher precedence;
* ``NOT (a OR b)`` and ``NOT NOT a`` do not parse (NOT only takes a predicate);
* a quote inside a string (``'O''Brien'``) does not parse;
* one-letter property names do not parse;
* there is no within-distance predicate;
* two WKT rules print their input to stdout.

This module loads pygeofilter's own grammar file, replaces exactly those rules (each replacement
asserts that the text it replaces is still there, so an upgrade of pygeofilter that changes the
grammar fails loudly), adds ``S_DWITHIN(a, b, metres)`` -> :class:`pygeofilter.ast.DistanceWithin`, and
builds the LALR parser once, on first use.
"""

from __future__ import annotations

import os
from functools import cache

from lark import Lark, v_args
from pygeofilter import ast
from pygeofilter.parsers.cql2_text import parser as _pgf

__all__ = ["parse"]

_REPLACEMENTS: tuple[tuple[str, str], ...] = (
    (
        "?condition: condition_1\n"
        '          | condition "AND"i condition_1                                 -> and_\n'
        '          | condition "OR"i condition_1                                   -> or_\n',
        "?condition: condition_and\n"
        '          | condition "OR"i condition_and                                 -> or_\n'
        "?condition_and: condition_1\n"
        '          | condition_and "AND"i condition_1                              -> and_\n',
    ),
    (
        '            | "NOT"i predicate                                               -> not_\n'
        '            | "NOT"i "(" predicate ")"                                       -> not_\n',
        '            | "NOT"i condition_1                                             -> not_\n',
    ),
    ('SINGLE_QUOTED: "\'" /.*?/ "\'"', "SINGLE_QUOTED: /'(?:[^']|'')*'/"),
    ("attribute: /[a-zA-Z][a-zA-Z_:0-9.]+/", "attribute: /[a-zA-Z_][a-zA-Z_:0-9.]*/"),
    ("%import .wkt.ewkt_geometry", "%import wkt.ewkt_geometry"),
    (
        "          | spatial_predicate\n",
        "          | spatial_predicate\n"
        '          | "S_DWITHIN"i "(" expression "," expression "," expression ")"  -> s_dwithin\n',
    ),
)


@v_args(meta=False, inline=True)
class _Transformer(_pgf.CQLTransformer):
    """pygeofilter's transformer, with doubled quotes undone and S_DWITHIN added."""

    def SINGLE_QUOTED(self, token: str) -> str:  # noqa: N802 - lark names callbacks after terminals
        return str(token)[1:-1].replace("''", "'")

    def s_dwithin(self, lhs: object, rhs: object, distance: object) -> ast.DistanceWithin:
        return ast.DistanceWithin(lhs, rhs, distance, "metres")  # type: ignore[arg-type]

    # pygeofilter's own versions of these two print their input to stdout (into the server's log).
    def wkt__multipoint_2(self, *coordinates: object) -> dict:
        return {"type": "MultiPoint", "coordinates": coordinates}

    def wkt__geometry_with_srid(self, srid: object, geometry: dict) -> dict:
        geometry["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{srid}"}}
        return geometry


def grammar() -> str:
    """pygeofilter's CQL2 text grammar with the corrections above applied."""
    path = os.path.join(os.path.dirname(_pgf.__file__), "grammar.lark")
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    for old, new in _REPLACEMENTS:
        if old not in text:
            raise RuntimeError(f"pygeofilter's CQL2 grammar changed; cannot find {old.strip()[:60]!r}")
        text = text.replace(old, new)
    return text


@cache
def _parser() -> Lark:
    return Lark(
        grammar(),
        parser="lalr",
        maybe_placeholders=False,
        transformer=_Transformer(),
        import_paths=[os.path.dirname(os.path.dirname(_pgf.__file__))],
    )


def parse(text: str) -> ast.Node:
    """Parse CQL2 text into pygeofilter's AST; lark's exceptions propagate for malformed input."""
    return _parser().parse(text)
