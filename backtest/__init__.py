"""margincall's engine: an event-driven backtester for leveraged crypto perpetuals."""
__version__ = "0.1.0"
