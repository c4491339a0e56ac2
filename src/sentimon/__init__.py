"""sentimon: sentiment analysis for short social-media text, with monitoring built in."""

__version__ = "0.1.0"
