"""The version of fpgen (its own module, so that subpackages read it without importing fpgen)."""

__version__ = "0.1.0"
