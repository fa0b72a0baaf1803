"""Scoring: image bytes in, an NSFW score out, batched on OpenVINO devices.

The flow, file by file::

    Scorer.score (admission, first pass, confirmation, result)     scorer.py
        -> DecodePool (read, hash, crop; a thread pool)              decoding.py
        -> the plan's lane for the first pass                        screening.py
        -> a Lane's DeadlineBatcher (when a batch leaves)            lanes.py, batcher.py
        -> DeviceWorker (AsyncInferQueue)                            devices.py
        -> ScoreResult                                               results.py

``config`` holds :class:`ScorerConfig`; ``screening`` the pure :class:`ScreeningPlan` (does a
screen pay here, which lanes exist) and the confirmation rule; ``compiling`` opens the devices
and compiles the plan's lanes while the first images decode; ``routing`` the per-image
:class:`RoutePlanner` of ``screening="adaptive"``.
"""
