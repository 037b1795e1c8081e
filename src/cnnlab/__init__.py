"""cnnlab: a config-driven experiment runner for image classification in PyTorch."""

__version__ = "0.1.0"

import time as _time

# When the process reached cnnlab: start-up time (import, config, data, model) is measured from here.
STARTED = _time.perf_counter()
