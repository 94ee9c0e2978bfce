"""Real-time contact-center gateway: Bayeux/CometD notifications and REST dialects."""

__version__ = "0.1.0"
