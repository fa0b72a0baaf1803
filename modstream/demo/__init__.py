"""The offline demo: embedded broker, loopback image server, synthetic firehose, pipeline."""
