"""Exact and MinHash near-duplicate removal: keys per document, a band-key shuffle, connected components."""
