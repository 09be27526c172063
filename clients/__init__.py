"""Third-party clients of the ledger; they depend on ``ledger.core`` only."""
