"""The HTTP API (FastAPI): a thin shell over ``ledger.service``."""
