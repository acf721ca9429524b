"""Moved to the `config` package; this name stays only while branches in flight land."""

from config import FILE_VARIANTS, ConfigError, Settings, mask_url

__all__ = ["FILE_VARIANTS", "ConfigError", "Settings", "mask_url"]
