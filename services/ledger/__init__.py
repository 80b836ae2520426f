"""The cross-border section ledger: what each upstream city owes (or is owed) at its sections.

For each monthly record of a water section (``section_record``): the GB 3838-2002 class of each
factor and of the record (single-factor method: the worst counted factor), the section's target
class, and the section's scheme (by station, city pair or province pair) with its computation:

- per tonne (Jiangsu): each exceeding factor pays
  (measured − target) mg/L × flow m³/s × days × 86 400 s ÷ 10⁶ g/t × rate yuan/t;
  a factor better than target pays nothing and offsets nothing, unless the scheme rewards it;
- fixed amount by index (Xin'an River model, Anhui–Jiangsu): P = K × Σ wᵢ × Cᵢ/Sᵢ; the upstream city
  pays the yearly sum when P > 1, the downstream city when P ≤ 1; a month accrues a twelfth, and the
  year's index from the mean concentrations is what settles (``Ledger.years``).

Positive: the upstream city owes the downstream city; negative: the downstream city owes the upstream
one.  Schemes, rates, amounts and their sources are configuration
(``layers/data/section_compensation.yaml``).

The two cities of a section come from the river network at the station: the station is snapped to
its nearest reach; the reach just upstream of that one lies in the upstream city (the city holding
most of its length) and the station in the downstream city.  Where both are the same city (a section
placed just above a border, e.g. an exit section) the reach just downstream gives the downstream city
instead.  No reach upstream: the
river enters from outside the loaded region (upstream city None).

The modules: ``config`` (the schemes as configured, and which section follows which), ``amounts``
(classes and amounts, no database), ``sections`` (which cities a section lies between), ``book`` (the ledger of a month and
city pair) and ``export`` (the ledger as CSV).
"""

from services.ledger.amounts import GRAMS_PER_TONNE, SECONDS_PER_DAY, factor_amounts, index_amount, month_volume_m3, record_class
from services.ledger.book import UNITS, Ledger, build_ledger, parse_pair
from services.ledger.config import CONFIG_FILE, FactorRule, IndexFactor, IndexScheme, LedgerConfig, PerTonneScheme, Scheme, load_config
from services.ledger.export import ledger_csv
from services.ledger.sections import SectionCities, section_cities

__all__ = ["CONFIG_FILE", "GRAMS_PER_TONNE", "SECONDS_PER_DAY", "UNITS", "FactorRule", "IndexFactor", "IndexScheme",
           "Ledger", "LedgerConfig", "PerTonneScheme", "Scheme", "SectionCities", "build_ledger", "factor_amounts",
           "index_amount", "ledger_csv", "load_config", "month_volume_m3", "parse_pair", "record_class",
           "section_cities"]
