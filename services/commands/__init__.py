"""CLI command groups, registered on the ``riskatlas`` app in services/cli.py."""
