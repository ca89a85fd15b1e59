"""What every other package builds on, importing nothing of ours: the settings, the words the
agent says, phone numbers as the whole application writes them, and private logging."""

from config.settings import ConfigError, Settings, get_settings

__all__ = ["ConfigError", "Settings", "get_settings"]
