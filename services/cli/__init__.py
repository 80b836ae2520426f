"""The ``riskatlas`` command line: one module per command or command group, named after it.

``main`` holds the typer app and registers every command in one place; ``output`` is what every
command prints (tables, or one JSON document with ``--json``).  A new command goes in a module of its
own here and one line in :mod:`services.cli.main`; it calls the analyses, never the web layer.
"""
