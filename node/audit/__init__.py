"""Audit trail: append-only, hash-chained records of every write (who, what, when, from where, before/after)."""
