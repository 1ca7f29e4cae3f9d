"""lrbench: the framework-neutral core. Imports no deep-learning framework."""

__version__ = "0.1.0"
