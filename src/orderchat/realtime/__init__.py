"""Live delivery: the hub of local connections, the bus between nodes, WebSocket glue."""
