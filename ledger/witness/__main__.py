"""``python -m ledger.witness``: the witness commands without the ledger's own."""

from ledger.witness.cli import witness_app

witness_app(prog_name="ledger witness")
