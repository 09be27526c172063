"""Alembic migrations: the only way any schema is created (SQLite and PostgreSQL)."""
