"""The REST service for curation jobs (`curate serve`, coming next)."""
