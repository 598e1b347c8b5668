"""The HTTP and WebSocket edge: thin routes over services, errors mapped in one place."""
