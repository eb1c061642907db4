"""Decoding and masking run ahead of the optimiser, in a background thread.

A neural masker costs about as much per frame as optimising it (InSPyReNet at 1080p: ~0.3 s a
frame on an H100), so the next window is decoded and masked while the current one is
optimised. ``Prefetcher(items, ahead, device)`` iterates like ``items`` but computes up to
``ahead`` items in advance. Errors raised while producing an item are raised again, in order,
where that item would have been taken; ``close()`` stops the thread (after the item at hand),
``close(timeout)`` waits for it at most that long. A consumer waiting for an item checks
``should_stop`` ten times a second and raises ``Interrupted`` when it says so, so a stop need
not wait for a frame that takes seconds to mask.

On CUDA the thread gets a stream of its own, so its kernels overlap the optimiser's. It holds
``cuda_capture_lock`` while it works: capturing a CUDA graph (``GraphedEncoder``) takes the
same lock, because any CUDA call from another thread during a capture breaks the capture.
"""
from __future__ import annotations

import contextlib
import queue
import threading
from typing import Callable, Iterator

import torch

from .errors import Interrupted

cuda_capture_lock = threading.Lock()
THREAD_NAME = "dynasketch-prefetch"

_DONE = object()


class Prefetcher:
    def __init__(self, items: Iterator, ahead: int, device: torch.device | str = "cpu",
                 should_stop: Callable[[], bool] = lambda: False):
        self.items = items
        self.should_stop = should_stop
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, ahead))
        self.closing = threading.Event()
        self.finished = False
        cuda = torch.device(device).type == "cuda"
        self.thread = threading.Thread(target=self._produce, args=(cuda,), daemon=True,
                                       name=THREAD_NAME)
        self.thread.start()

    def _produce(self, cuda: bool) -> None:
        # Only CUDA work must keep out of a graph capture; on a CPU the lock is not taken.
        guard = cuda_capture_lock if cuda else contextlib.nullcontext()
        with guard:
            stream = torch.cuda.stream(torch.cuda.Stream()) if cuda else contextlib.nullcontext()
        try:
            with stream:
                while not self.closing.is_set():
                    try:
                        with guard:
                            item = next(self.items)
                            if cuda:      # the consumer uses its results on another stream
                                torch.cuda.current_stream().synchronize()
                    except StopIteration:
                        self._put((_DONE, None))
                        return
                    except BaseException as exc:  # raised to the consumer, in order
                        self._put((_DONE, exc))
                        return
                    self._put((item, None))
        finally:                                 # the thread that ran the items closes them
            close = getattr(self.items, "close", None)
            if close is not None:
                close()

    def _put(self, entry) -> None:
        while not self.closing.is_set():
            try:
                self.queue.put(entry, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self):
        return self

    def __next__(self):
        if self.finished:
            raise StopIteration
        while True:
            try:
                item, error = self.queue.get(timeout=0.1)
                break
            except queue.Empty:
                if self.should_stop():
                    raise Interrupted() from None
        if item is _DONE:
            self.finished = True
            self.close()
            if error is not None:
                raise error
            raise StopIteration
        return item

    def close(self, timeout: float | None = None) -> None:
        """Stop producing; returns once the thread is done with the item it was working on,
        or after ``timeout`` seconds (it then finishes that item on its own and ends)."""
        self.closing.set()
        if self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
