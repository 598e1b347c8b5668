"""OrderChat: self-hosted instant messaging built around orders."""

__version__ = "0.1.0"
