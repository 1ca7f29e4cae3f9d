"""The one exception type the CLI turns into a single line and exit code 2."""


class BenchError(Exception):
    """Bad input or a missing resource: the message says what is wrong and how to fix it."""


class DataError(BenchError):
    """A data file is missing, truncated or corrupt."""


class SpecError(BenchError):
    """A study file or a command-line option is invalid."""
