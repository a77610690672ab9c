"""Flagger-compatible API types (`flagger.app`), their defaults, validation and names."""
