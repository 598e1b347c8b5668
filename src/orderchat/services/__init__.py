"""Use cases: check with core, write through storage in one transaction, publish after commit.

Only services publish to the bus, and only what has been committed.
"""
