"""``python -m cropglobe``: the command line, as the ``cropglobe`` command."""

from cropglobe.cli.main import main

main()
