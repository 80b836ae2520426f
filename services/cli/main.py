"""The ``riskatlas`` command: the typer app, every command registered here, in the order of ``--help``."""

from __future__ import annotations

import signal

import typer

from services.cli.check import check_cmd
from services.cli.coverage import coverage
from services.cli.db import db_app
from services.cli.demo import demo
from services.cli.feed import feed_app
from services.cli.flags import flags_app
from services.cli.grade import grade
from services.cli.incidents import incidents_app
from services.cli.inspections import inspections_app
from services.cli.layers import layers
from services.cli.ledger import ledger_app
from services.cli.load import load
from services.cli.map import map_cmd
from services.cli.observations import observations_app
from services.cli.overlay import overlay_cmd
from services.cli.plume import plume
from services.cli.serve import serve
from services.cli.spill import spill
from services.cli.users import users_app

app = typer.Typer(help="riskatlas: environmental risk sources across city and province borders, on PostGIS.",
                  no_args_is_help=True, add_completion=False)
app.add_typer(db_app, name="db")
app.command("load")(load)
app.command("check")(check_cmd)
app.command("demo")(demo)
app.command("layers")(layers)
app.command("serve")(serve)
app.command("spill")(spill)
app.command("plume")(plume)
app.command("map")(map_cmd)
app.add_typer(flags_app, name="flags")
app.command("overlay")(overlay_cmd)
app.command("grade")(grade)
app.command("coverage")(coverage)
app.add_typer(ledger_app, name="ledger")
app.add_typer(users_app, name="users")
app.add_typer(observations_app, name="observations")
app.add_typer(inspections_app, name="inspections")
app.add_typer(incidents_app, name="incidents")
app.add_typer(feed_app, name="feed")


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM ends the command as Ctrl-C does: psycopg then cancels the running statement on the
    server instead of leaving a backend to finish a load nobody waits for."""
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _terminated)
    app()
