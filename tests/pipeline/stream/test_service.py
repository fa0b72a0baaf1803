"""The pipeline's assembly, before anything starts: the command it names for watching it."""

from __future__ import annotations

import pytest

from modstream.kafka.settings import KafkaSettings
from modstream.pipeline.metrics import PipelineMetrics
from modstream.pipeline.stream.scoring import StreamConfig
from modstream.pipeline.stream.service import Pipeline, PipelineSettings
from modstream.pipeline.stream.topics import Topics

SERVERS = KafkaSettings(bootstrap_servers="127.0.0.1:9092")


@pytest.mark.parametrize(
    ("topics", "command"),
    [
        (Topics(), "modstream results --bootstrap-servers 127.0.0.1:9092 --follow"),
        (Topics.with_prefix("shop"),
         "modstream results --bootstrap-servers 127.0.0.1:9092 --follow --topic-prefix shop"),
    ],
)  # fmt: skip
def test_the_watch_command_names_the_broker_and_a_prefix_other_than_images(
    topics: Topics, command: str
) -> None:
    """The logged command reads exactly this pipeline's result topics: its address, and the
    --topic-prefix only where it is not the default."""
    settings = PipelineSettings(kafka=SERVERS, stream=StreamConfig(topics=topics))
    assert Pipeline(settings, PipelineMetrics()).watch_command == command
