"""The sans-I/O WebSocket protocol: frames, JSON codec, per-connection state.

Nothing here touches a socket, a database or an event loop, so the SDK and the
server share it and its tests run in memory.
"""
