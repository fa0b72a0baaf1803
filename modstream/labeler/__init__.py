"""``modstream labeler``: the stream's and the reviewers' decisions as signed Bluesky labels.

keys.py      the labeler's secp256k1 signing key, its did:key, low-S compact signatures
labels.py    a label as atproto defines it, its DAG-CBOR signing bytes and its signature
log.py       every stored label in seq order: what subscriptions replay and queries search
metrics.py   the labeler's Prometheus metrics
xrpc.py      the XRPC server: subscribeLabels (WebSocket frames) and queryLabels (JSON)
"""
