"""``python -m services.cli``: the same as the ``riskatlas`` command."""

from services.cli.main import main

main()
