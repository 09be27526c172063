"""JSON Schemas (2020-12) of the event types, one file per type.

The server validates posted events against them and /docs renders them.
"""
