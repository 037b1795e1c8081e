"""cnnlab: a config-driven experiment runner for image classification in PyTorch."""

__version__ = "0.1.0"

import time as _time

# When the process reached cnnlab: start-up time (import, config, data, model) is measured from here.
STARTED = _time.perf_counter()

# The Python API (cnnlab/api.py) loads on first use, so `import cnnlab` stays cheap.
_API = ("train", "lr_find", "load_runs", "runs_frame")


def __getattr__(name):
    if name in _API:
        from cnnlab import api

        return getattr(api, name)
    if name == "errors":  # cnnlab.errors.ConfigError, for an `except` around cnnlab.train
        import importlib

        return importlib.import_module("cnnlab.errors")
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_API))
