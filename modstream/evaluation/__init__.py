"""``modstream eval``: fit thresholds to labelled data and check the pipeline against weak labels.

labelled.py     what to evaluate: a labels CSV or safe/nsfw folders
score_cache.py  scores on disk, keyed by content hash, model and preprocessing
scoring.py      score the inputs through the moderation step, with a progress bar
curves.py       ROC, precision-recall, operating points, bootstrap intervals (pure numpy)
report.py       the report: metrics, operating points, presets, warnings; the policy file
weak.py         agreement with authors' self-labels found in result records
pictures.py     ROC/PR/histogram PNGs (matplotlib, the ``eval`` extra) and the HTML page
"""
