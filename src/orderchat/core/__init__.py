"""Pure domain rules: no I/O, no event loop, no database, no HTTP.

Everything here is synchronous and deterministic given its inputs (time comes
in as an argument), so it is tested in milliseconds without a server.
"""
