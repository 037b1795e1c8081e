"""The training loop and what it needs: runtime setup, loss, metrics, checkpoints, early stopping.

`cnnlab.train` is also the Python API's entry point, `cnnlab.train(overrides)` (cnnlab/api.py): once
this package is imported, Python binds the name `cnnlab.train` to it, so the package itself is callable.
"""
import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self, overrides=None) -> dict:
        """Run one job as `cnnlab OVERRIDES...` would; see cnnlab.api.train."""
        from cnnlab.api import train

        return train(overrides)


sys.modules[__name__].__class__ = _CallablePackage
