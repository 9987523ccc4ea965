"""Human review: a person reads the pairs in a local web page and overrules the judges.

`log` keeps the decisions (`review.jsonl`, one line per decision, written as it is made); `apply` turns them
into a stage (the curate step `human_review`) with every dropped pair's reason on record; `index` loads a
build folder or dataset file for the page; `server` is the page itself (`prefdata review OUT_DIR`).
"""
