"""Storage adapters: SQLAlchemy tables, engines, migrations and the recorder.

The only package that speaks SQL. Driver errors are translated into the
``ledger.core.errors`` tree at this boundary.
"""
