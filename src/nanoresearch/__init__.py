"""NanoResearch: automated research that co-evolves with its user."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nanoresearch")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+src"
