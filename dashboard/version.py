"""The app's version: one line every part may import (the package's root imports the wiring)."""

__version__ = "0.1.0"
