"""``modstream labeler``: the stream's and the reviewers' decisions as signed Bluesky labels.

    decisions -> policy.py (which value) -> book.py (which labels are new) -> service.py (sign,
    store in the label topic, seq = offset + 1) -> log.py -> xrpc.py (subscribe, query)

keys.py         the labeler's secp256k1 signing key, its did:key, low-S compact signatures
labels.py       a label as atproto defines it, its DAG-CBOR signing bytes and its signature
policy.py       which value a decision earns (presets porn, sexual, graded; policy files)
book.py         pure: what each result or review decision adds to the log, once per post and value
service.py      the Kafka side: the consume loop's sink, the ordered writer, the log read back
log.py          every stored label in seq order: what subscriptions replay and queries search
xrpc.py         the XRPC server: subscribeLabels (WebSocket frames) and queryLabels (JSON)
server.py       one labeler process: service and routes on one log
declaration.py  the app.bsky.labeler.service record and the DID document's entries
metrics.py      the labeler's Prometheus metrics
"""
