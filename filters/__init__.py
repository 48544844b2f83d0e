"""Filters: language ID, word segmentation and the heuristic quality rules.

Every filter is a pure function of a batch of texts (plus their languages), so it can be
tested without Ray; `curation.execution` wires them into Ray Data actor pools.
"""
