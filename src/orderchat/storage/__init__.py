"""The only package that speaks SQL.

Stores are plain functions over an open SQLAlchemy connection and return core
values. A function whose name ends in `_txn` must run inside a write
transaction opened by `Database.write`. Nothing outside this package knows
which database is underneath.
"""
