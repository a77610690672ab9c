"""Routers: one module per traffic provider, pure builders over plain dicts (see common.py)."""
