"""Errors a user can fix. The CLI prints their message as one paragraph, without a traceback."""


class CnnlabError(Exception):
    """A problem with the user's input or environment; the message says what to do."""

    exit_code = 2


class ConfigError(CnnlabError):
    """A config value that is unknown, of the wrong type, or out of range."""


class DataError(CnnlabError):
    """A dataset that is missing, empty or unreadable."""


class TrainingError(CnnlabError):
    """Training could not go on (a loss that became NaN, a full disk)."""

    exit_code = 1
