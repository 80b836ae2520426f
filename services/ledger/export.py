"""The ledger as CSV, by city pair and month or in detail."""

from __future__ import annotations

import csv
import io
from typing import Any

from services.ledger.book import Ledger

DETAIL = ["month", "upstream_code", "upstream_name", "downstream_code", "downstream_name", "station_key",
          "station_name", "synthetic", "scheme", "factor", "measured_mg_l", "target_class", "target_mg_l", "flow_m3s",
          "volume_m3", "load_t", "rate_yuan_per_t", "ratio", "weight", "index_p", "amount_yuan"]


def ledger_csv(ledger: Ledger, *, detail: bool = False) -> str:
    """The ledger as CSV (UTF-8 with a byte-order mark): one row per city pair and month (amounts per factor and per scheme), or with
    ``detail`` one row per record and factor (per-tonne schemes) or per index term plus the index itself
    (fixed-amount schemes)."""
    buf = io.StringIO()
    buf.write("\ufeff")  # UTF-8 with a byte-order mark: spreadsheet programs read the Chinese names only then
    w = csv.writer(buf, lineterminator="\n")
    if detail:
        w.writerow(DETAIL)
        for r in ledger.records:
            for row in _detail_rows(r):
                w.writerow([row.get(c, "") for c in DETAIL])
        return buf.getvalue()
    factors = sorted({f for p in ledger.pairs for f in p["by_factor"]})
    schemes = sorted({s for p in ledger.pairs for s in p["by_scheme"]})
    w.writerow(["month", "upstream_code", "upstream_name", "downstream_code", "downstream_name", "sections",
                "synthetic", *[f"amount_{f}_yuan" for f in factors], *[f"amount_{s}_yuan" for s in schemes],
                "amount_yuan"])
    for p in ledger.pairs:
        w.writerow([p["month"], p["upstream_code"] or "outside", p["upstream_name"] or "",
                    p["downstream_code"] or "outside", p["downstream_name"] or "", " ".join(p["sections"]),
                    str(p["synthetic"]).lower(), *[round(p["by_factor"].get(f, 0.0), 2) for f in factors],
                    *[round(p["by_scheme"].get(s, 0.0), 2) for s in schemes], round(p["amount_yuan"], 2)])
    return buf.getvalue()


def _detail_rows(r: dict[str, Any]) -> list[dict[str, Any]]:
    head = {"month": r["month"], "upstream_code": r["upstream_code"] or "outside",
            "upstream_name": r["upstream_name"] or "", "downstream_code": r["downstream_code"] or "outside",
            "downstream_name": r["downstream_name"] or "", "station_key": r["station_key"],
            "station_name": r["station_name"], "synthetic": str(r["synthetic"]).lower(),
            "scheme": (r["scheme"] or {}).get("key", ""), "target_class": r["target_class"], "flow_m3s": r["flow_m3s"],
            "volume_m3": round(r["volume_m3"], 1)}
    rows = [{**head, "factor": f["factor"], "measured_mg_l": f["measured_mg_l"], "target_mg_l": f["target_mg_l"],
             "load_t": round(f["load_t"], 6), "rate_yuan_per_t": f["rate_yuan_per_t"],
             "amount_yuan": round(f["amount_yuan"], 2)} for f in r["factors"]]
    index = r.get("index")
    if index:
        rows += [{**head, "factor": t["factor"], "measured_mg_l": t["measured_mg_l"], "target_mg_l": t["standard_mg_l"],
                  "ratio": round(t["ratio"], 6), "weight": t["weight"]} for t in index["terms"]]
        if index["p"] is not None:
            rows.append({**head, "factor": "P", "index_p": round(index["p"], 6),
                         "amount_yuan": round(index["amount_yuan"], 2)})
    return rows
