"""A daemon thread doing one look every `tick` seconds until stopped: how a model server
runs scheduled monitors and deployment decisions beside its requests, never on them."""

from __future__ import annotations

import logging
import threading


class PeriodicThread:
    """Calls `look()` every `tick` seconds on a daemon thread until `stop()`; a failing look
    is logged and the next one still comes (the server must keep serving)."""

    def __init__(self, *, tick: float, name: str, logger: logging.Logger, failure: str) -> None:
        self.tick = tick
        self._logger = logger
        self._failure = failure  # what the log says when a look fails
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def look(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.look()
            except Exception:
                self._logger.exception(self._failure)
            self._stop.wait(self.tick)
