"""One worker per OpenVINO device: batches in, scores out, through an ``AsyncInferQueue``.

The worker counts its own free infer requests so that :meth:`DeviceWorker.submit` never blocks the
event loop (``AsyncInferQueue.start_async`` waits when every request is busy). OpenVINO calls back
on its own thread; the result is handed to the event loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import openvino as ov

from modstream.errors import DeviceError
from modstream.models.network import CompiledNetwork

ScoreArray = npt.NDArray[np.float32]
BatchCallback = Callable[[ScoreArray | DeviceError, float], None]


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceStatistics:
    """A device worker's counters at one moment (``busy_s``: time with a request running)."""

    device: str
    requests: int
    in_flight: int
    batches: int
    images: int
    failures: int
    busy_s: float


@dataclass(slots=True)
class _Counters:
    """What a worker counts as it goes (on the event loop only)."""

    in_flight: int = 0
    batches: int = 0
    images: int = 0
    failures: int = 0
    busy_s: float = 0.0


@dataclass(frozen=True, slots=True)
class _Job:
    count: int
    started: float
    callback: BatchCallback
    pixels: npt.NDArray[np.uint8]  # kept alive while the device reads it


class DeviceWorker:
    def __init__(self, network: CompiledNetwork, loop: asyncio.AbstractEventLoop) -> None:
        self.network = network
        self._loop = loop
        self._queue = ov.AsyncInferQueue(network.compiled, network.num_requests)
        self._queue.set_callback(self._on_complete)
        self._counts = _Counters()

    @property
    def device(self) -> str:
        return self.network.device

    @property
    def free_slots(self) -> int:
        return self.network.num_requests - self._counts.in_flight

    def statistics(self) -> DeviceStatistics:
        counts = self._counts
        return DeviceStatistics(
            device=self.device,
            requests=self.network.num_requests,
            in_flight=counts.in_flight,
            batches=counts.batches,
            images=counts.images,
            failures=counts.failures,
            busy_s=counts.busy_s,
        )

    def submit(self, pixels: npt.NDArray[np.uint8], callback: BatchCallback) -> None:
        """Start inference on ``pixels`` (N, 224, 224, 3); ``callback`` runs on the event loop."""
        if self.free_slots <= 0:
            raise RuntimeError("submit() called on a device with no free infer request")
        count = pixels.shape[0]
        static = self.network.static_batch
        if static is not None and count > static:
            # Refused here, before OpenVINO: a request whose start_async raises is never handed
            # back to the queue, and the next submit would wait for it forever.
            self._counts.failures += 1
            raise DeviceError(
                f"device {self.device} refused a batch of {count}: the network is compiled for "
                f"batches of {static}"
            )
        if static is not None and count < static:
            padding = np.zeros((static - count, *pixels.shape[1:]), dtype=pixels.dtype)
            pixels = np.concatenate([pixels, padding])
        self._counts.in_flight += 1
        job = _Job(count=count, started=time.perf_counter(), callback=callback, pixels=pixels)
        try:
            self._queue.start_async({0: pixels}, job, share_inputs=True)
        except RuntimeError as exc:
            self._counts.in_flight -= 1
            self._counts.failures += 1
            raise DeviceError(f"device {self.device} refused a batch: {exc}") from exc

    def wait_idle(self) -> None:
        """Block until every started request has finished (call from a worker thread)."""
        self._queue.wait_all()

    def _on_complete(self, request: ov.InferRequest, job: _Job) -> None:
        # OpenVINO's thread: copy the scores out of the request's buffer before it is reused.
        elapsed = time.perf_counter() - job.started
        outcome: ScoreArray | DeviceError
        try:
            outcome = np.array(request.get_output_tensor(0).data[: job.count, 1], dtype=np.float32)
        except Exception as exc:  # noqa: BLE001 - any failure here must reach the callers
            outcome = DeviceError(f"device {self.device} failed a batch: {exc}")
        # A closed loop means nobody is left to receive the result.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._finish, job, outcome, elapsed)

    def _finish(self, job: _Job, outcome: ScoreArray | DeviceError, elapsed: float) -> None:
        self._counts.in_flight -= 1
        self._counts.busy_s += elapsed
        if isinstance(outcome, DeviceError):
            self._counts.failures += 1
        else:
            self._counts.batches += 1
            self._counts.images += job.count
        job.callback(outcome, elapsed)
