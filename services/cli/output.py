"""What every ``riskatlas`` command prints: tables for people, one JSON document with ``--json``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

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


def emit(data: dict[str, Any], as_json: bool, title: str) -> None:
    """A flat document as a two-column table, or as JSON with ``--json``."""
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
        return
    table = Table(title=title, show_header=False)
    for k, v in data.items():
        table.add_row(str(k), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str))
    out.print(table)


@contextmanager
def progress(enabled: bool) -> Iterator[Any]:
    """A ``step(name, done, total)`` callback drawing progress bars on a terminal, else None."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    with Progress(TextColumn("{task.description:>10}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def step(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=max(total, 1))
            bar.update(tasks[name], completed=done, total=max(total, 1))

        yield step
