"""Payments, refunds, invoices, and the daily reconciliation digest for finance."""
