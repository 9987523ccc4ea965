"""align: a thin training layer over TRL for data that prefdata built and validated."""

__version__ = "0.1.0"
