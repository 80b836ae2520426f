"""The catalogue is the one truth: every domain value named in Chinese and English, one draw order,
one id field, and the derived products a load invalidates agree with the analyses that recompute them."""

from __future__ import annotations

import re

from layers.catalogue import DRAW_ORDER, FLAG_KIND_LABELS, LAYERS, SEVERITY_LABELS, Field, Label, labelled


def test_every_domain_value_has_a_chinese_and_an_english_name() -> None:
    han = re.compile(r"[\u4e00-\u9fff\uff08\uff09]")  # Chinese characters, or full-width brackets (Q bands)
    for layer in LAYERS.values():
        for f in layer.fields:
            if not f.domain:
                continue
            assert [v for v, _ in f.labels] == list(f.domain), f"{layer.name}.{f.name}: labels out of step"
            for value in f.domain:
                label = f.label(value)
                assert label is not None and han.search(label.zh) and not han.search(label.en), (layer.name, f.name, value)


def test_a_labelled_domain_keeps_its_values_and_order() -> None:
    f = Field("x", domain=labelled({"b": ("乙", "bee"), "a": ("甲", "ay")}))
    assert f.domain == ("b", "a") and f.label("a") == Label("甲", "ay") and f.label("c") is None
    assert Field("y", domain=("p", "q")).labels == ()


def test_flag_vocabulary_is_the_hazard_rules_one() -> None:
    from services.hazards.rules import KINDS, load_rules

    assert set(FLAG_KIND_LABELS) == set(KINDS)
    assert set(SEVERITY_LABELS) == set(load_rules().severity_rule.levels)


def test_draw_order_areas_then_lines_then_points() -> None:
    kinds = [LAYERS[n].geometry_type for n in DRAW_ORDER]
    assert set(DRAW_ORDER) == set(LAYERS) and DRAW_ORDER[-1] == "risk_source"
    assert kinds == sorted(kinds, key=["MultiPolygon", "LineString", "Point"].index)


def test_id_fields_are_fields_and_unique_per_layer() -> None:
    for layer in LAYERS.values():
        assert layer.id_field in layer.field_names, layer.name


def test_what_a_load_invalidates_is_what_the_analyses_recompute() -> None:
    from services.hazards.flags import LAYER_KINDS

    assert {n for n, layer in LAYERS.items() if "flags" in layer.invalidates} == set(LAYER_KINDS)
    assert LAYERS["risk_source"].invalidates == ("own-grades", "flags")
    assert [n for n, layer in LAYERS.items() if layer.load_as == "boundaries"] == ["admin_area"]
    assert [n for n, layer in LAYERS.items() if layer.network] == ["river"]
