"""corpus-curation: the curation engine (job spec, IO, execution, dedup, accounting, reports, CLI)."""

__version__ = "0.1.0"
