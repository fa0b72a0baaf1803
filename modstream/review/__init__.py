"""``modstream review``: the console where people judge the review queue.

queue.py      which items wait, who holds a lease on which, what is decided (pure)
reviewers.py  who may judge: ``name:token`` lines, tokens compared in constant time
service.py    Kafka in (the review topics, offsets committed for decided items only), Kafka
              out (``images.reviewed``), images fetched server-side through the guarded fetcher
app.py        the JSON API and the page (aiohttp)
static/       the page: plain HTML, CSS and JavaScript, no build step
export.py     ``--export``: the decisions on ``images.reviewed`` as JSON lines, for eval
"""
