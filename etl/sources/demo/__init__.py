"""The synthetic demo region: a plausible, seeded inventory of the Nanjing metropolitan area as files.

:func:`write_demo_files` (``writer``) writes the files the ordinary ETL loads; the pieces are built
by one module each: ``region`` (counties and cities), ``courses`` and ``network`` (river courses and
the reach network), ``water`` (drinking-water sources and HJ 338 zones), ``areas``, ``stations``,
``sources`` (risk sources and the Chuzhou bureau export), ``population`` (the raster) and ``ledger``
(a year of cross-border section records). Everything but the real boundaries is labelled synthetic.
"""

from etl.sources.demo.common import CSV_HEADER, DEFAULT_SEED, DemoFile, DemoManifest
from etl.sources.demo.writer import write_demo_files

__all__ = ["DemoFile", "DemoManifest", "CSV_HEADER", "DEFAULT_SEED", "write_demo_files"]
