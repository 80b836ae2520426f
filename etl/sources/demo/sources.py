"""Demo risk sources, and the Chuzhou bureau export (GB18030, GCJ-02)."""

from __future__ import annotations

import csv
import io
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Point

from etl.sources.demo.common import _WRONG_CODE_SHARE, CHUZHOU, CSV_HEADER, DATA_DIR, _to_metric, _xy_to_lonlat
from etl.sources.demo.network import _River
from etl.sources.demo.region import _Region
from gis.chinese_offsets import wgs84_to_gcj02

# --------------------------------------------------------------------------------------------------
# risk sources


@dataclass(frozen=True)
class _Substance:
    name: str
    name_zh: str
    cas: str | None
    scale_t: float
    categories: tuple[str, ...]


def _substances() -> list[_Substance]:
    with (DATA_DIR / "demo_substances.csv").open(encoding="utf-8", newline="") as fh:
        return [
            _Substance(r["name"], r["name_zh"], r["cas"] or None, float(r["scale_t"]), tuple(r["categories"].split()))
            for r in csv.DictReader(fh)
        ]


class _Sampler:
    """Draws land points inside the region's counties, outside rivers and lakes."""

    def __init__(self, region: _Region, water: shapely.Geometry, rng: np.random.Generator) -> None:
        self.region, self.water, self.rng = region, water, rng
        shapely.prepare(water)

    def accept(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """County code of each point, or '' where it is outside the region or on water."""
        codes = self.region.county_of(lon, lat)
        wet = shapely.contains_xy(self.water, lon, lat)
        codes[wet] = ""
        return codes

    def draw(self, n: int, propose: Any, inside: shapely.Geometry | None = None) -> tuple[np.ndarray, ...]:
        """``n`` accepted points from ``propose(k) -> (x_m, y_m)``, optionally also inside the metric
        polygon ``inside``; returns lon, lat, county arrays. Raises if the proposal keeps missing."""
        lon_out, lat_out, code_out = [], [], []
        got = 0
        for _ in range(200):
            if got >= n:
                break
            k = max(4 * (n - got), 64)
            x, y = propose(k)
            if inside is not None:
                keep = shapely.contains_xy(inside, x, y)
                x, y = x[keep], y[keep]
            lon, lat = _xy_to_lonlat(x, y)
            codes = self.accept(lon, lat)
            ok = codes != ""
            lon_out.append(lon[ok])
            lat_out.append(lat[ok])
            code_out.append(codes[ok])
            got += int(ok.sum())
        if got < n:
            raise RuntimeError(f"could only place {got} of {n} synthetic risk sources")
        return (np.concatenate(lon_out)[:n], np.concatenate(lat_out)[:n], np.concatenate(code_out)[:n])


def _uniform_in(rng: np.random.Generator, bounds: Sequence[float]) -> Any:
    minx, miny, maxx, maxy = bounds

    def propose(k: int) -> tuple[np.ndarray, np.ndarray]:
        return rng.uniform(minx, maxx, k), rng.uniform(miny, maxy, k)

    return propose


def _allocate(weights: Sequence[float], total: int) -> list[int]:
    """Integers proportional to ``weights`` summing to ``total`` (largest remainder)."""
    w = np.asarray(weights, dtype=float)
    exact = w / w.sum() * total
    base = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - base), kind="stable")[: total - int(base.sum())]:
        base[i] += 1
    return [int(v) for v in base]


def _groups(places: dict[str, Any]) -> list[dict[str, Any]]:
    """The placement groups with their weights and category weights."""
    groups: list[dict[str, Any]] = []
    for area in places["industrial_areas"]:
        groups.append({"kind": "area", "spec": area, "weight": area["weight"], "categories": area["categories"],
                       "address": area["address"]})
    for pair in places["border_pairs"]:
        a, b = pair["cities"]
        for near, far in ((a, b), (b, a)):
            groups.append({"kind": "border", "near": near, "far": far, "weight": pair["weight"] / 2.0,
                           "categories": places["border_categories"], "address": None})
    groups.append({"kind": "chu", "weight": places["chu_upstream"]["weight"],
                   "categories": places["border_categories"], "address": "滁河沿岸"})
    groups.append({"kind": "scattered", "weight": places["scattered_weight"],
                   "categories": places["scattered_categories"], "address": None})
    return groups


def _place_group(group: dict[str, Any], n: int, sampler: _Sampler, region: _Region,
                 rivers: dict[str, _River], places: dict[str, Any]) -> tuple[np.ndarray, ...]:
    rng = sampler.rng
    if group["kind"] == "area":
        spec = group["spec"]
        c = _to_metric(Point(spec["at"]))
        sigma = float(spec["sigma_km"]) * 1000.0

        def propose(k: int) -> tuple[np.ndarray, np.ndarray]:
            return c.x + sigma * rng.standard_normal(k), c.y + sigma * rng.standard_normal(k)

        return sampler.draw(n, propose)
    if group["kind"] == "border":
        lo, hi = (1000.0 * v for v in places["border_band_km"])
        far = region.city_metric[group["far"]]
        band = region.city_metric[group["near"]].intersection(far.buffer(hi)).difference(far.buffer(lo))
        shapely.prepare(band)
        return sampler.draw(n, _uniform_in(rng, band.bounds), band)
    if group["kind"] == "chu":
        chu = _to_metric(rivers["chu"].line())
        band = chu.buffer(1000.0 * places["chu_upstream"]["band_km"]).intersection(region.city_metric[CHUZHOU])
        shapely.prepare(band)
        return sampler.draw(n, _uniform_in(rng, band.bounds), band)
    everything = shapely.union_all([g.envelope for g in region.city_metric.values()])
    return sampler.draw(n, _uniform_in(rng, everything.bounds))


def _pick(rng: np.random.Generator, weights: Mapping[str, float]) -> str:
    keys = list(weights)
    w = np.array([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=w / w.sum()))]


def _risk_sources(
    places: dict[str, Any], n_sources: int, sampler: _Sampler, region: _Region, rivers: dict[str, _River]
) -> list[dict[str, Any]]:
    """Synthetic risk sources with every input field of the catalogue's risk_source layer."""
    rng = sampler.rng
    words = places["names"]
    substances = _substances()
    groups = _groups(places)
    counts = _allocate([g["weight"] for g in groups], n_sources)
    drafts: list[dict[str, Any]] = []
    for group, n in zip(groups, counts):
        if n == 0:
            continue
        lon, lat, codes = _place_group(group, n, sampler, region, rivers, places)
        for x, y, county in zip(lon, lat, codes):
            drafts.append({"lon": float(x), "lat": float(y), "county": str(county),
                           "category": _pick(rng, group["categories"]), "address": group["address"]})
    drafts.sort(key=lambda d: (region.owner[d["county"]], d["county"], d["lat"], d["lon"]))
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    seq: dict[str, int] = {}
    for d in drafts:
        city = region.owner[d["county"]]
        seq[city] = seq.get(city, 0) + 1
        category = d["category"]
        trades = words["trades"][category]
        suffix, industry = trades[int(rng.integers(0, len(trades)))]
        name = _company_name(rng, words, city, region.names[d["county"]], suffix, seen)
        choices = [s for s in substances if category in s.categories]
        k = int(rng.integers(1, min(4, len(choices)) + 1))
        picked = sorted(rng.choice(len(choices), size=k, replace=False))
        subs = [{"name": choices[i].name, "cas": choices[i].cas,
                 "quantity_t": _quantity(rng, choices[i], category)} for i in picked]
        out.append({
            "key": f"RS-{city}-{seq[city]:04d}",
            "name": name,
            "category": category,
            "industry": industry,
            "address": _address(rng, words, region, d["county"], d["address"]),
            "substances": subs,
            "contact": f"{rng.choice(words['surnames'])}{rng.choice(words['titles'])}（合成） "
                       f"0000-{int(rng.integers(0, 10_000_000)):07d}",
            **_m_scores(f"RS-{city}-{seq[city]:04d}",
                        int(np.clip(round(rng.normal(45 if category == "chemical" else 32, 15)), 0, 100))),
            "status": str(rng.choice(["active", "closed", "under-construction"], p=[0.92, 0.05, 0.03])),
            "owner_city": city,
            "county": d["county"],
            "geometry": Point(d["lon"], d["lat"]),
        })
    return out


def _m_scores(key: str, m_air: int) -> dict[str, int]:
    """HJ 941 scores M for air (§6.2) and water (§7.2): the air score as drawn before, and a water score
    a few points off it (its risk-control measures differ), drawn from a generator of the source's own
    (seeded by its key) so the rest of the demo draws what it always drew."""
    offset = np.random.default_rng(zlib.crc32(key.encode("utf-8"))).normal(0.0, 8.0)
    return {"m_air": m_air, "m_water": int(np.clip(round(m_air + offset), 0, 100))}


def _quantity(rng: np.random.Generator, substance: _Substance, category: str) -> float:
    """Stored tonnes: the substance's scale (its HJ 169 critical quantity) times a log-normal factor
    clipped to 0.005..25, so Q = q / Qcrit spreads over general to major; bulk oil (scale >= 1000 t)
    held outside oil-and-gas storage is fuel for the site's own use, a few tonnes to a few hundred."""
    factor = float(np.clip(np.exp(rng.normal(-0.5, 1.2)), 0.005, 25.0))
    if substance.scale_t >= 1000.0 and category != "oil-and-gas-storage":
        factor *= 0.02
    return round(max(substance.scale_t * factor, 0.001), 3)


def _company_name(rng: np.random.Generator, words: Mapping[str, Any], city: str, county_name: str,
                  suffix: str, seen: set[str]) -> str:
    """A synthetic company name, unique within ``seen``, ending in （合成）."""
    stem = f"{words['city_short'][city]}{rng.choice(words['brands'])}{suffix}"
    name = f"{stem}（合成）"
    if name in seen:
        name = f"{stem}{county_name}分公司（合成）"
    k = 2
    while name in seen:
        name = f"{stem}{county_name}第{k}分公司（合成）"
        k += 1
    seen.add(name)
    return name


def _address(rng: np.random.Generator, words: Mapping[str, Any], region: _Region, county: str,
             area: str | None) -> str:
    city_code = county[:4] + "00"
    province = region.province_names[county[:2] + "0000"]
    street = area or str(rng.choice(words["streets"]))
    return f"{province}{region.city_names[city_code]}{region.names[county]}{street}{int(rng.integers(1, 999))}号"


def _chuzhou_csv(sources: list[dict[str, Any]], region: _Region, rng: np.random.Generator,
                 words: Mapping[str, Any], substances: list[_Substance]) -> tuple[bytes, int]:
    """The Chuzhou sources as a bureau export: GB18030 bytes and the number of wrong county codes."""
    zh = {s.name: s.name_zh for s in substances}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    wrong = rng.random(len(sources)) < _WRONG_CODE_SHARE
    if len(sources) and not wrong.any():
        wrong[int(rng.integers(0, len(sources)))] = True
    for src, bad in zip(sources, wrong):
        g = src["geometry"]
        glon, glat = wgs84_to_gcj02(g.x, g.y)
        county = src["county"]
        if bad:
            county = str(rng.choice(region.neighbours[county]))
        subs = src["substances"]
        writer.writerow([
            src["key"], src["name"], words["category_zh"][src["category"]], src["industry"], src["address"],
            ";".join(zh[s["name"]] for s in subs),
            ";".join(s["cas"] or "" for s in subs),
            ";".join(str(max(int(round(s["quantity_t"] * 1000)), 1)) for s in subs),
            src["m_air"], words["status_zh"][src["status"]],  # a city file with one M (for both media)
            f"{glon:.6f}", f"{glat:.6f}", county,
        ])
    return buf.getvalue().encode("gb18030"), int(wrong.sum())


