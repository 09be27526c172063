"""``python -m ledger``: the ``ledger`` command line."""

from ledger.cli import main

main()
