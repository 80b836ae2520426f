"""The sandboxed parse: ``python -I -m etl.parse_child REQUEST`` (started by ``etl.sandbox``).

Order matters.  Limits on CPU, file size and open files are set first; the address-space limit
first leaves room to import the libraries and is tightened to what the parse may add once they are
loaded.  GDAL is imported only after the file's format is known, with every driver but that
format's one skipped, so GDAL cannot open the file (or anything it names) with another driver.
The result goes to the original stdout as an Arrow IPC stream; file descriptor 1 itself is pointed
at stderr so that nothing a library prints can corrupt it.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path
from typing import Any, BinaryIO

from etl.errors import InputError
from etl.formats import DRIVERS
from etl.limits import MiB, ParseLimits

EXIT_INPUT, EXIT_MEMORY = 3, 4
IMPORT_ALLOWANCE = 1024 * MiB  # address space for loading GDAL, PROJ, Arrow and pandas
UNNEEDED = ("geopandas", "shapely", "pyproj", "matplotlib")


def main(argv: list[str]) -> int:
    """Parse the file the request names; write the result or the refusal; return the exit status."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    request = json.loads(argv[1])
    limits = ParseLimits(**request["limits"])
    _limit_resources(limits)
    try:
        from etl.parse import parse

        parsed = parse(Path(request["path"]), request["name"], Path(request["scratch"]), limits,
                       source_layer=request["source_layer"], encoding=request["encoding"],
                       before_read=lambda kind: _prepare(kind, request["drivers"], limits))
        _write(out, parsed)
        return 0
    except InputError as exc:
        _reply(out, {"error": str(exc)})
        return EXIT_INPUT
    except MemoryError:
        return EXIT_MEMORY
    except Exception as exc:  # noqa: BLE001 - pyarrow and GDAL report exhausted memory in their own types
        if "memory" in type(exc).__name__.lower() or "out of memory" in str(exc).lower():
            return EXIT_MEMORY
        raise


def _limit_resources(limits: ParseLimits) -> None:
    cpu = int(limits.parse_cpu_seconds)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    size = limits.max_unpacked_bytes + 64 * MiB
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    room = _address_space() + limits.parse_memory_bytes + IMPORT_ALLOWANCE
    resource.setrlimit(resource.RLIMIT_AS, (room, room))


def _prepare(kind: str, drivers: list[str], limits: ParseLimits) -> None:
    """Load the one reader ``kind`` needs, then hold the parse to its memory budget."""
    for name in UNNEEDED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    import pyarrow  # noqa: F401

    if kind == "csv":
        import pandas  # noqa: F401
    else:
        sys.modules.setdefault("pandas", None)  # type: ignore[arg-type]
        driver = DRIVERS[kind]
        os.environ["GDAL_SKIP"] = ",".join(d for d in drivers if d != driver)
        import pyogrio
        import pyogrio.raw  # noqa: F401

        if set(pyogrio.list_drivers()) != {driver}:
            raise InputError(f"the reader for {driver} could not be isolated from GDAL's other drivers")
    room = _address_space() + limits.parse_memory_bytes
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    room = min(room, hard)
    resource.setrlimit(resource.RLIMIT_AS, (room, room))


def _address_space() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _write(out: BinaryIO, parsed: Any) -> None:
    import pyarrow as pa
    import pyarrow.ipc

    meta = {"kind": parsed.kind, "geometry": parsed.geometry, "crs": parsed.crs, "encoding": parsed.encoding}
    table = parsed.table
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"riskatlas": json.dumps(meta).encode()})
    with pa.ipc.new_stream(out, table.schema) as writer:
        writer.write_table(table)
    out.flush()


def _reply(out: BinaryIO, body: dict[str, str]) -> None:
    out.write(json.dumps(body).encode())
    out.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
