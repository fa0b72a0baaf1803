"""modstream: real-time NSFW moderation of image streams with open_nsfw on OpenVINO."""

__version__ = "0.1.0"
