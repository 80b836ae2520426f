"""One place for colours and symbols: the style document and the MapLibre style both come from the catalogue."""

from __future__ import annotations

import json

import pytest

from layers.catalogue import DRAW_ORDER, LAYERS, RISK_CATEGORIES, RISK_LEVELS
from maps.labels import value_label, value_labels
from maps.maplibre import BASE_COLLECTIONS, SWITCHER, map_style
from maps.offline import remote_references
from maps.styles import CATEGORY_SHAPES, FLAG_SHAPE_PATHS, SHAPE_PATHS, UNGRADED_COLOR, style_document


def test_style_document_is_the_catalogue_styles() -> None:
    doc = style_document()
    assert set(doc["layers"]) == set(LAYERS) and doc["order"] == list(DRAW_ORDER)
    for name, layer in LAYERS.items():
        entry = doc["layers"][name]
        assert entry["color"] == layer.style.color
        assert entry["palette"] == layer.style.palette
        assert entry["color_by"] == layer.style.color_by
        assert entry["title_zh"] == layer.title_zh
        assert {f["name"] for f in entry["fields"]} == {f.name for f in layer.fields if f.type != "json"}
    rs = doc["layers"]["risk_source"]
    assert set(rs["shapes"]) == set(RISK_CATEGORIES) and set(rs["classes"]) == set(RISK_LEVELS)
    assert rs["missing_color"] == UNGRADED_COLOR not in rs["palette"].values()
    assert set(CATEGORY_SHAPES.values()) <= set(doc["shapes"]) == set(SHAPE_PATHS) | {f"flag-{k}" for k in FLAG_SHAPE_PATHS}
    json.dumps(doc)  # JSON-ready


def test_every_domain_value_has_both_names() -> None:
    names = value_labels()
    for layer in LAYERS.values():
        for f in layer.fields:
            for v in f.domain or ():
                if f.name != "target_class":  # GB 3838 classes I-V are written the same in Chinese
                    assert names[f.name][v]["zh"] != v, (f.name, v)
    assert value_label("risk_level", "major", "zh") == "重大"
    assert value_label("category", "hazardous-waste", "en") == "hazardous waste"


def test_maplibre_style_uses_the_catalogue_colours_and_own_tiles() -> None:
    style = map_style("http://app.test", attribution="credit")
    text = json.dumps(style)
    for layer in LAYERS.values():
        assert layer.style.color in text
        for colour in layer.style.palette.values():
            assert colour in text
    assert UNGRADED_COLOR in text
    tiles = [t for s in style["sources"].values() for t in s.get("tiles", [])]
    assert tiles and all(t.startswith("http://app.test/") for t in tiles)
    assert "collections=" + ",".join(BASE_COLLECTIONS) in style["sources"]["base"]["tiles"][0]
    assert "glyphs" not in style and "sprite" not in style, "nothing to fetch beyond the app's tiles"
    ids = {layer["id"] for layer in style["layers"]}
    assert {i for group in SWITCHER.values() for i in group} <= ids
    risk = next(layer for layer in style["layers"] if layer["id"] == "risk_source")
    assert risk["source"] == "risk" and risk["layout"]["icon-image"][0] == "match"


def test_basemap_only_when_configured() -> None:
    assert not any(k.startswith("bm-") for k in map_style("http://a")["sources"])
    with_base = map_style("http://a", basemap_url="http://tiles.local/{z}/{x}/{y}.png")
    assert with_base["sources"]["bm-custom-0"]["tiles"] == ["http://tiles.local/{z}/{x}/{y}.png"]
    layer = next(x for x in with_base["layers"] if x["id"] == "bm-custom-0")
    assert layer["layout"]["visibility"] == "none", "the offline map is the default"


def test_basemap_presets() -> None:
    from maps.basemaps import basemaps

    listed = {b.name: b for b in basemaps(["tianditu-vec", "tianditu-img", "osm", "amap"], "KEY123")}
    assert list(listed)[0] == "offline" and all(listed[n].available for n in ("tianditu-vec", "tianditu-img", "osm"))
    vec = listed["tianditu-vec"]
    assert len(vec.tiles) == 2 and "LAYER=vec" in vec.tiles[0][0] and "LAYER=cva" in vec.tiles[1][0]
    assert all("tk=KEY123" in u and "TILEMATRIXSET=w" in u for u in vec.tiles[0] + vec.tiles[1])
    assert {u.split("/")[2] for u in vec.tiles[0]} == {f"t{i}.tianditu.gov.cn" for i in range(8)}
    assert "LAYER=img" in listed["tianditu-img"].tiles[0][0] and "LAYER=cia" in listed["tianditu-img"].tiles[1][0]
    assert not listed["amap"].available and "GCJ-02" in listed["amap"].reason_en
    keyless = {b.name: b for b in basemaps(["tianditu-vec"])}
    assert not keyless["tianditu-vec"].available and "key" in keyless["tianditu-vec"].reason_en
    style = map_style("http://a", basemaps=basemaps(["tianditu-vec", "amap"], "K"))
    assert {"bm-tianditu-vec-0", "bm-tianditu-vec-1"} <= set(style["sources"]) and "bm-amap-0" not in style["sources"]
    with pytest.raises(ValueError, match="google"):
        basemaps(["google"])


def test_remote_references_finds_fetches_not_links() -> None:
    page = ('<script src="https://cdn.example/x.js"></script><link rel="stylesheet" href="//cdn.example/y.css">'
            '<style>a{background:url(http://img.example/z.png)}</style><a href="https://leafletjs.com">Leaflet</a>'
            '<img src="data:image/png;base64,AAAA">')
    assert remote_references(page) == ["//cdn.example/y.css", "http://img.example/z.png",
                                       "https://cdn.example/x.js"]


def test_settings_refuse_an_unknown_basemap_preset() -> None:
    from pydantic import ValidationError

    from services.web.settings import APISettings

    with pytest.raises(ValidationError, match="google"):
        APISettings(basemaps=("google",))
    assert APISettings(basemaps=("osm",)).basemaps == ("osm",)


def test_every_kind_of_flag_has_its_own_hollow_symbol() -> None:
    from layers.catalogue import FLAG_KIND_LABELS
    from maps.styles import FLAG_SHAPE_PATHS, style_document

    assert set(FLAG_SHAPE_PATHS) == set(FLAG_KIND_LABELS) and len(set(FLAG_SHAPE_PATHS.values())) == len(FLAG_SHAPE_PATHS)
    assert all(path.count("Z") >= 2 for path in FLAG_SHAPE_PATHS.values()), "an outer and an inner contour: hollow"
    layer = next(x for x in map_style("http://a")["layers"] if x["id"] == "flags")
    images = layer["layout"]["icon-image"]
    assert layer["type"] == "symbol" and all(f"shape-flag-{k}" in images for k in FLAG_KIND_LABELS)
    assert all(f"flag-{k}" in style_document()["shapes"] for k in FLAG_KIND_LABELS)
