"""Errors a user can fix. The CLI prints their message as one paragraph, without a traceback."""
import errno


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


def write_failure(exc: OSError) -> str:
    """An OSError from a write, in words a user acts on."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{reason} (the disk or your quota is full)"
    if exc.errno == errno.EFBIG:
        return f"{reason} (a file-size limit, see `ulimit -f`, or the file system's largest file)"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{reason} (the folder is not writable)"
    return reason
