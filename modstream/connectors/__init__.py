"""Connectors produce :class:`~modstream.pipeline.records.ImageEvent` s into ``images.incoming``.

Each connector is a :class:`~modstream.connectors.base.Source`; :mod:`.publisher` moves its events
to Kafka. Live sources (Jetstream, Mastodon, upload webhooks, S3/MinIO events, backfills) register
in :data:`~modstream.connectors.registry.SOURCES` the same way the synthetic firehose does.
"""
