"""``modstream verdicts``: the newest brand-safety verdict per post, image URL and sha256, for
an ad server or a feed to ask in milliseconds.

subjects.py   what a lookup names (post, url, sha256), checked
entries.py    the compacted verdict topic's records, from results and reviewers' decisions
table.py      the newest verdict per subject, in memory (pure)
service.py    Kafka: input -> entries -> the verdict topic -> every replica's table
app.py        the lookup routes
server.py     one replica: the service and the routes until stopped
config.py     settings; metrics.py: Prometheus
"""
