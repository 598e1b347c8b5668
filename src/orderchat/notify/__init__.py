"""Reaching people who are away: web push, e-mail and outbound webhooks.

Everything here is an edge: it speaks to push services, SMTP servers and the
shop's own endpoints. What is sent to whom, and when, is decided by pure rules
in `core/notify.py`; the durable queue and the worker live in `services/notify/`.
"""
