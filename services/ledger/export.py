"""The ledger as CSV, by city pair and month or in detail."""

from __future__ import annotations

import csv
import io

from services.ledger.book import Ledger


def ledger_csv(ledger: Ledger, *, detail: bool = False) -> str:
    """The ledger as CSV: one row per city pair and month (amounts per factor), or with ``detail`` one
    row per record and factor."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if detail:
        w.writerow(["month", "upstream_code", "upstream_name", "downstream_code", "downstream_name", "station_key",
                    "station_name", "factor", "measured_mg_l", "target_class", "target_mg_l", "flow_m3s", "volume_m3",
                    "load_t", "rate_yuan_per_t", "amount_yuan"])
        for r in ledger.records:
            for f in r["factors"]:
                w.writerow([r["month"], r["upstream_code"] or "outside", r["upstream_name"] or "",
                            r["downstream_code"] or "outside", r["downstream_name"] or "", r["station_key"],
                            r["station_name"], f["factor"], f["measured_mg_l"], r["target_class"], f["target_mg_l"],
                            r["flow_m3s"], round(r["volume_m3"], 1), round(f["load_t"], 6), f["rate_yuan_per_t"],
                            round(f["amount_yuan"], 2)])
        return buf.getvalue()
    factors = sorted({f for p in ledger.pairs for f in p["by_factor"]})
    w.writerow(["month", "upstream_code", "upstream_name", "downstream_code", "downstream_name", "sections",
                *[f"amount_{f}_yuan" for f in factors], "amount_yuan"])
    for p in ledger.pairs:
        w.writerow([p["month"], p["upstream_code"] or "outside", p["upstream_name"] or "",
                    p["downstream_code"] or "outside", p["downstream_name"] or "", " ".join(p["sections"]),
                    *[round(p["by_factor"].get(f, 0.0), 2) for f in factors], round(p["amount_yuan"], 2)])
    return buf.getvalue()
