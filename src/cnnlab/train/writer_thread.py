"""TensorBoard's writer, opened on a thread while the first epoch trains.

Importing torch.utils.tensorboard costs about 0.1 s (most of it tensorboard's TensorFlow stub) and
drawing train_batch.png about as much again, yet nothing reaches the event file before the first
epoch ends. So a run hands both to a thread and starts training: the first call on the writer (the
epoch's losses) waits for that thread, and any error from it is raised there. Training reads
nothing from the writer, so its numbers are the same either way (tests/test_speed_writer_thread.py).
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, List, Optional

log = logging.getLogger(__name__)

Task = Callable[[Any], None]  # work that needs the open writer, e.g. logging train_batch.png


class WriterThread:
    """Stands for the writer `open_writer()` returns; `tasks` run on the thread once it is open."""

    def __init__(self, open_writer: Callable[[], Any], tasks: Optional[List[Task]] = None):
        self._open_writer, self._tasks = open_writer, list(tasks or [])
        self._writer: Any = None
        self._error: Optional[BaseException] = None
        self._reported = False
        self._thread = threading.Thread(target=self._open, name="cnnlab-tensorboard", daemon=True)
        self._thread.start()

    def _open(self) -> None:
        try:
            self._writer = self._open_writer()
            for task in self._tasks:
                task(self._writer)
        except BaseException as exc:  # handed to the training thread at its first call
            self._error = exc

    def ready(self) -> Any:
        """The open writer, once the thread is done; its error, if it had one."""
        self._thread.join()
        if self._error is not None:
            self._reported = True
            raise self._error
        return self._writer

    def __getattr__(self, name: str) -> Any:  # add_scalar, add_histogram, file_writer, flush, ...
        return getattr(self.ready(), name)

    def close(self) -> None:
        # Never raises: close() runs in a `finally`, where a second error would hide the first.
        self._thread.join()
        if self._error is not None and not self._reported:
            what = "did not open" if self._writer is None else "opened, then its thread failed"
            log.warning(f"cnnlab: TensorBoard's writer {what}: {self._error}")
        if self._writer is not None:
            self._writer.close()
