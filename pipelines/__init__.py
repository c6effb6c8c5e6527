"""Dagster wiring: definitions, resources, settings, the CLI. Only entry points import this."""
