"""``modstream labeler keygen`` and ``declaration``: the set-up helpers, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import locations
from atproto_crypto.did import parse_did_key


def _labeler(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modstream", "labeler", *args], capture_output=True, text=True,
        cwd=locations.REPO, env=env, timeout=60,
    )  # fmt: skip


def test_keygen_prints_a_key_and_a_did_key_atproto_reads() -> None:
    """Two lines: the variable to set, and a did:key atproto parses as a secp256k1 key."""
    done = _labeler("keygen")
    assert done.returncode == 0, done.stderr
    variable, did = done.stdout.splitlines()
    assert variable.startswith("MODSTREAM_LABELER_KEY=") and len(variable.split("=")[1]) == 64
    assert parse_did_key(did.removeprefix("did:key: ")).jwt_alg == "ES256K"


def test_declaration_lists_the_policys_values_and_the_did_document_entries() -> None:
    """The record declares every value the policy can publish, defines the custom ones only,
    and --endpoint adds the key's did:key and the AtprotoLabeler service."""
    key_line = _labeler("keygen").stdout.splitlines()[0]
    env = {**os.environ, "MODSTREAM_LABELER_KEY": key_line.split("=", 1)[1]}
    done = _labeler("declaration", "--label-policy", "graded", "--endpoint",
                    "https://labeler.example.com", env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    record = document["record"]
    assert record["$type"] == "app.bsky.labeler.service"
    assert record["policies"] == {"labelValues": ["porn", "sexual"], "labelValueDefinitions": []}
    service = document["did_document"]["services"]["atproto_labeler"]
    assert service == {"type": "AtprotoLabeler", "endpoint": "https://labeler.example.com"}
    assert document["did_document"]["verificationMethods"]["atproto_label"].startswith("did:key:z")


def test_the_labeler_refuses_to_start_without_its_key_or_did() -> None:
    """No key in the environment and no --labeler-did are usage errors with one line each."""
    env = {k: v for k, v in os.environ.items() if k != "MODSTREAM_LABELER_KEY"}
    no_did = _labeler("--bootstrap-servers", "127.0.0.1:1", env=env)
    assert no_did.returncode == 2 and "--labeler-did is required" in no_did.stderr
    no_key = _labeler("--bootstrap-servers", "127.0.0.1:1", "--labeler-did", "did:plc:x", env=env)
    assert no_key.returncode == 2 and "MODSTREAM_LABELER_KEY is not set" in no_key.stderr
