"""Demo data: a ledger of the 2025 US-Ukraine minerals talks, one posted event per line (JSONL)."""
