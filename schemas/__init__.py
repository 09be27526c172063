"""JSON Schemas (2020-12) of the event types, one file per type; the server validates posted events against them."""
