"""CPU and wall time of a block, for the benchmark scripts (``with Clock() as c: ...``)."""

from __future__ import annotations

import time


class Clock:
    """CPU (``process_time``) and wall (``perf_counter``) seconds spent inside the block."""

    def __enter__(self) -> Clock:
        self.c0, self.w0 = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = time.process_time() - self.c0
        self.wall = time.perf_counter() - self.w0
