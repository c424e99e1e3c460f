"""A logging handler keeping a logger's records, for tests that wait on a log line."""

from __future__ import annotations

import logging
import threading


class LogRecords(logging.Handler):
    """A logger's records, with a wait (never a sleep) for matching ones."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(logging.DEBUG)
        self.wait_s = wait_s
        self.records: list[logging.LogRecord] = []
        self._arrived = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._arrived:
            self.records.append(record)
            self._arrived.notify_all()

    def matching_records(
        self, fragment: str, level: int = logging.DEBUG
    ) -> list[logging.LogRecord]:
        return [r for r in self.records if fragment in r.getMessage() and r.levelno >= level]

    def matching(self, fragment: str, level: int = logging.DEBUG) -> list[str]:
        return [r.getMessage() for r in self.matching_records(fragment, level)]

    def wait_for(
        self, fragment: str, count: int = 1, level: int = logging.DEBUG
    ) -> list[logging.LogRecord]:
        """The matching records, once there are ``count``; fails after ``wait_s``."""
        with self._arrived:
            assert self._arrived.wait_for(
                lambda: len(self.matching_records(fragment, level)) >= count, self.wait_s
            ), f"no {count} x {fragment!r} in the log"
            return self.matching_records(fragment, level)
