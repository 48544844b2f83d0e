"""Input discovery and streaming readers (pyarrow.fs: local paths and object stores)."""
