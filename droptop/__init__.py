"""droptop: top for Linux kernel packet drops."""

__version__ = "0.1.0"
