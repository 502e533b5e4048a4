"""A small bounded memo shared by a page's concurrent callbacks.

A page whose callbacks fire together for one interaction (the classification page's
counts, stereonets and map) reads the same filtered rows: the first request builds them,
the others wait for that build instead of running the same query in parallel, and at most
``maxsize`` selections are kept (least recently used dropped), so memory stays bounded.
Keys must include the data version (``DataProvider._version``) so a new build is read.
"""
from __future__ import annotations

import threading
from collections import OrderedDict


class Memo:
    """``get(key, build)``: the value of ``key``, built once by ``build()`` (callers must not
    modify it). Thread-safe; a failing build is not stored (the next call retries)."""

    def __init__(self, maxsize: int = 4):
        self.maxsize = int(maxsize)
        self._lock = threading.Lock()
        self._values: OrderedDict = OrderedDict()
        self._building: dict = {}

    def get(self, key, build):
        while True:
            with self._lock:
                if key in self._values:
                    self._values.move_to_end(key)
                    return self._values[key]
                pending = self._building.get(key)
                if pending is None:
                    pending = self._building[key] = threading.Event()
                    owner = True
                else:
                    owner = False
            if not owner:
                pending.wait()
                continue  # built (or failed: then this thread tries)
            try:
                value = build()
                with self._lock:
                    self._values[key] = value
                    self._values.move_to_end(key)
                    while len(self._values) > self.maxsize:
                        self._values.popitem(last=False)
                return value
            finally:
                with self._lock:
                    self._building.pop(key, None)
                pending.set()

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
