"""The boundary where aiokafka's errors become modstream's: what a failed send means."""

from __future__ import annotations

import pytest
from aiokafka.errors import (
    BrokerNotAvailableError,
    CorruptRecordException,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    OutOfOrderSequenceNumber,
    RecordListTooLargeError,
    TopicAuthorizationFailedError,
)

from modstream.errors import BrokerDenied, BrokerUnavailable, RecordRefused, RecordTooLarge
from modstream.kafka.producers import MAX_REQUEST_BYTES
from modstream.kafka.publish import send_failure

CLIENT_SIDE = MessageSizeTooLargeError(
    "The message is 1048739 bytes when serialized which is larger than the maximum request size "
    "you have configured with the max_request_size configuration"
)


def test_a_record_over_the_request_limit_names_its_size_and_the_producers_limit() -> None:
    error = send_failure(CLIENT_SIDE, topic="images.safe", size=1_048_739)
    assert isinstance(error, RecordTooLarge) and not error.retriable
    assert (error.size, error.limit) == (1_048_739, MAX_REQUEST_BYTES)
    assert str(error) == (
        "a record of 1,048,739 bytes for images.safe is over the limit of 1,048,576 bytes "
        "(the producer's max_request_size)"
    )


@pytest.mark.parametrize("refusal", [MessageSizeTooLargeError(), RecordListTooLargeError()])
def test_a_record_the_broker_refuses_as_too_large_names_the_topics_limit(
    refusal: KafkaError,
) -> None:
    error = send_failure(refusal, topic="images.safe", size=100_536, limit=20_000)
    assert isinstance(error, RecordTooLarge) and error.limit == 20_000
    assert str(error).endswith(
        "over the limit of 20,000 bytes (the max.message.bytes of images.safe)"
    )
    unknown = send_failure(refusal, topic="images.safe", size=100_536)
    assert str(unknown).endswith("over the limit of the max.message.bytes of images.safe")


def test_a_denied_topic_is_a_denial_that_names_it() -> None:
    error = send_failure(TopicAuthorizationFailedError(), topic="images.flagged", size=10)
    assert isinstance(error, BrokerDenied) and not error.retriable
    assert error.kind == "broker_denied" and "images.flagged" in str(error)


def test_an_invalid_record_is_refused_for_good() -> None:
    error = send_failure(CorruptRecordException(), topic="t", size=10)
    assert type(error) is RecordRefused and not error.retriable


@pytest.mark.parametrize(
    "failure",
    [
        KafkaTimeoutError(),  # aiokafka: not retriable; here: the broker was away too long
        BrokerNotAvailableError(),  # aiokafka: not retriable; here: a broker still starting
        KafkaConnectionError(),
        NotLeaderForPartitionError(),
        OutOfOrderSequenceNumber(),  # the publisher renews its producer, then sends again
        ConnectionResetError(),
    ],
)
def test_everything_else_is_the_broker_being_away_and_retriable(failure: Exception) -> None:
    error = send_failure(failure, topic="t", size=10)
    assert type(error) is BrokerUnavailable and error.retriable
