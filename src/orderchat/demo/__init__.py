"""The demo shop behind `orderchat serve --demo`: staff, customers, orders, stock and media.

Demo data only, seeded through the services like any other caller. Nothing in
the server depends on it; only the start-up wiring (`api/app.py`) imports it.
"""
