"""Worker entry point (the container's command): ``python -m container.worker``."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from container.worker.runtime import Worker
from workflows.settings import Tables, WorkerSettings


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stdout)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    settings = WorkerSettings.from_env()  # fails fast on a malformed environment
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # ECS sends SIGTERM before stopping a task: finish the current poll, release ownership, exit.
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker = Worker(settings, Tables.from_env(), stop=stop)
    logging.getLogger("webordinary.worker").info("worker %s starting", worker.worker_id)
    if settings.task_token:
        worker.run_spawned()
    else:
        worker.run_warm()
    return 0


if __name__ == "__main__":
    sys.exit(main())
