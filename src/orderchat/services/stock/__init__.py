"""Inventory: SKUs, stock movements, reservations for orders, low-stock alerts."""
