"""The claims layer: each claim of the paper as one tested function that takes features (or networks and data)
and returns its measures, their intervals and its verdict (one module per chapter's claims)."""
