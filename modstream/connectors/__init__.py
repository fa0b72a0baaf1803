"""Connectors produce :class:`~modstream.events.ImageEvent` s into ``images.incoming``.

The flow, file by file::

    a source (jetstream/, mastodon/, webhook/, backfill.py, synthetic.py)
        -> base.Emission (events + the source's position)          base.py
        -> publisher.SourcePublisher (bounded, acks=all, retried)  publisher.py
        -> positions.PositionTracker (which position is durable)   positions.py
        -> checkpoints (saved position per stream)                 checkpoints.py
        -> resume (resume, or start over on another cluster)       resume.py

``runner.run_connectors`` runs a process's sources side by side through one producer;
``registry`` loads a source by name only when it is asked for, and ``options`` casts
``--source-option`` text to each source's declared options. ``metrics`` exports per-source
counters to Prometheus; ``backoff`` is the reconnect and retry delay every source shares.
"""
