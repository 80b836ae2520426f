"""``python -m bench --national [options]``: the national-scale performance table (:mod:`bench.national_bench`).

Every other bench runs as its own module (``python -m bench.ogc_bench``, ``python -m bench.load_bench``, ...).
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if argv[:1] == ["--national"]:
        from bench.national_bench import main as national

        return national(argv[1:])
    print("usage: python -m bench --national [--sources N] [--only STEPS] [--skip STEPS] [--skip-prepare] [--json]\n"
          "       (the other benches: python -m bench.<name>_bench --help)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
