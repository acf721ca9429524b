"""Configuration: the one reader of the environment.

config.service holds the settings of the service's processes (API, projector, rebuild,
producer), each marked with the processes that read it; config.stack the local stack's (its
ports and folders, the test passes, the servers of one's own it is to use instead); and
config.environment the grammar they are read with (and secrets given as `<NAME>_FILE`).
"""

from config.environment import ConfigError, mask_url
from config.service import FILE_VARIANTS, PROCESSES, Settings
from config.stack import StackSettings

__all__ = ["FILE_VARIANTS", "PROCESSES", "ConfigError", "Settings", "StackSettings", "mask_url"]
