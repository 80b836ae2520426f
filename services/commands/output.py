"""What every ``riskatlas`` command prints: tables for people, one JSON document with ``--json``."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console

out = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True)
JsonOpt = typer.Option(False, "--json", help="Print a JSON document instead of tables.")


def fail(message: str, as_json: bool, code: int = 2) -> NoReturn:
    """Say what went wrong (as ``{"error", "exit_code"}`` with ``--json``) and exit with ``code``."""
    if as_json:
        sys.stdout.write(json.dumps({"error": message, "exit_code": code}, ensure_ascii=False) + "\n")
    else:
        err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    """One JSON document on standard output."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
