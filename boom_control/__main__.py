"""``python -m boom_control`` is the ``boom`` command."""

from boom_control.cli import main

main()
