"""Shared test setup. Fixtures that build state use factories."""
