"""The REST service for curation jobs (`curate serve`): FastAPI routes, the job store, Ray job submission."""
