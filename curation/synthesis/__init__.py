"""Model-synthesized pretraining data (`curate synthesize`, `kind: synthesize`).

Select documents by rules -> render one prompt per (document, task) -> a generator (an OpenAI-compatible
server such as vLLM or SGLang, or a local Hugging Face causal LM) -> checks (language, length, prompt
leakage, verbatim copy, the heuristic filters) -> curated / rejected / failed Parquet files with the same
accounting as a curation job. Every response is written to a ledger as it arrives, so a restarted job
never pays for a generation twice.

  spec.py        the job spec
  templates.py   the prompt templates (built in and user-given), versioned by their text
  generators.py  the HTTP client (batching, concurrency, retries, timeouts) and the local model
  ledger.py      the append-only record of finished generations (resume)
  checks.py      the output checks, a pure function of a batch
  job.py         the driver: select, schedule, check, write, account
"""
