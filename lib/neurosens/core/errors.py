"""The study's error types that more than one layer raises or catches."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """An invalid configuration value; the message names the field and its valid range."""
