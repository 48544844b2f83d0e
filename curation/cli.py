"""The `curate` command: jobs of every kind (run, mix, ablate, synthesize), the demo, quality models, the API."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

import yaml


def _fail(msg: str) -> int:
    print(f"curate: error: {msg}", file=sys.stderr)
    return 2


def run_command(
    spec_path: str | None,
    *,
    output: str | None = None,
    address: str | None = None,
    quiet: bool = False,
    spec_data: dict | None = None,
    command: str = "run",
) -> int:
    """Validate, run and summarise one job (`command`: the subcommand it was given to; `run` takes every
    kind, `mix`/`ablate`/`synthesize` only theirs); every expected failure is one clear line, exit code 2."""
    from curation.io.sources import InputError
    from curation.job import JobError
    from curation.kinds import parse_any_spec, run_any
    from curation.progress import Progress
    from curation.spec import SpecError, read_spec_file

    try:
        if spec_data is None:
            spec_data = read_spec_file(spec_path)
        job, _ = parse_any_spec(spec_data, output=output, command=command)
        run_any(job, address=address, progress=Progress(enabled=not quiet))
    except (SpecError, InputError, JobError) as e:
        return _fail(str(e))
    except OSError as e:  # a path the service's policy refuses, a read-only or vanished output
        return _fail(f"I/O error, job stopped: {e}")
    except Exception as e:
        cause = getattr(e, "cause", None)  # a Ray task's error wraps the worker's exception
        if isinstance(cause, (OSError, JobError, InputError)):
            return _fail(f"I/O error in a worker, job stopped: {cause}")
        raise
    except KeyboardInterrupt:
        return _fail("interrupted; run the same command again to resume")
    return 0


def demo_spec(output: str) -> dict:
    """The demo job with its corpus paths made absolute (the corpus ships inside the package)."""
    base = Path(str(resources.files("curation") / "demo"))
    spec = yaml.safe_load((base / "demo.yaml").read_text(encoding="utf-8"))
    for inp in spec["inputs"]:
        inp["path"] = str(base / inp["path"])
    spec["output"] = output
    return spec


def _train_quality(args: argparse.Namespace) -> int:
    from curation.io.sources import InputError
    from curation.train_quality import train_quality
    from filters.fasttext_quality import TrainParams

    if not 0 < args.test_fraction < 1:
        return _fail("--test-fraction must be between 0 and 1")
    params = TrainParams(
        epoch=args.epoch, lr=args.lr, word_ngrams=args.word_ngrams, dim=args.dim, bucket=args.bucket, seed=args.seed
    )
    try:
        train_quality(
            args.positive,
            args.negative,
            args.output,
            text_field=args.text_field,
            group_field=args.group_field,
            max_per_class=args.max_per_class,
            test_fraction=args.test_fraction,
            params=params,
        )
    except (InputError, OSError, ValueError) as e:
        return _fail(str(e))
    return 0


def _distill_quality(args: argparse.Namespace) -> int:
    from curation.io.sources import InputError
    from curation.train_quality import LabelledTexts, iter_texts
    from filters.distill import distill, load_scorer, reservoir_sample
    from filters.fasttext_quality import TrainParams

    if not 0 < args.test_fraction < 1 or args.grades < 2 or args.sample < 10:
        return _fail("need 0 < --test-fraction < 1, --grades >= 2 and --sample >= 10")
    try:
        scorer = load_scorer(args.scorer)
        bad = LabelledTexts()
        sample = reservoir_sample(
            iter_texts(args.input, args.text_field, args.group_field, bad), args.sample, args.seed
        )
        if bad.unreadable:
            print(f"skipped {bad.unreadable} unreadable or empty records (first: {bad.first_error})")
        distill(
            [t for t, _ in sample],
            [g for _, g in sample],
            scorer,
            args.output,
            scorer_name=args.scorer,
            grades=args.grades,
            test_fraction=args.test_fraction,
            params=TrainParams(seed=args.seed),
            batch_size=args.batch_size,
        )
    except (InputError, OSError, ValueError, ImportError, AttributeError) as e:
        return _fail(str(e))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="curate", description="Curate pretraining corpora on Ray.")
    sub = p.add_subparsers(dest="command", required=True)
    # the job commands: one spec each (`run` takes any kind and dispatches on it)
    for name, help_, what in (
        ("run", "run a job spec of any kind (curate, mix, ablate, synthesize)", "job spec (YAML)"),
        ("mix", "assemble a token-budgeted mixture from curated outputs (kind: mix)", "mixture spec (YAML)"),
        ("ablate", "choose mixture weights with a swarm of small proxy models (kind: ablate)", "ablation spec (YAML)"),
        (
            "synthesize",
            "rewrite and generate documents with a language model (kind: synthesize)",
            "synthesis spec (YAML)",
        ),
    ):
        j = sub.add_parser(name, help=help_)
        j.add_argument("spec", help=what)
        j.add_argument("--output", help="output location (overrides the spec's `output`)")
        j.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local cluster)")
        j.add_argument("--quiet", action="store_true", help="no progress lines")
    tq = sub.add_parser(
        "train-quality", help="train a fastText quality classifier from positive and negative documents"
    )
    tq.add_argument("--positive", action="append", required=True, help="JSONL (.gz/.zst) or Parquet; repeatable; globs")
    tq.add_argument("--negative", action="append", required=True, help="as --positive")
    tq.add_argument("--output", required=True, help="model path (MODEL.bin; metrics go to MODEL.bin.json)")
    tq.add_argument("--text-field", default="text")
    tq.add_argument(
        "--group-field",
        help="field whose value keeps documents together in the train/held-out "
        "split (a page or repository id; default: the record id)",
    )
    tq.add_argument("--max-per-class", type=int, help="sample at most this many documents per class")
    tq.add_argument("--test-fraction", type=float, default=0.2, help="share of groups held out (default 0.2)")
    tq.add_argument("--epoch", type=int, default=20)
    tq.add_argument("--lr", type=float, default=0.5)
    tq.add_argument("--word-ngrams", type=int, default=2)
    tq.add_argument("--dim", type=int, default=64)
    tq.add_argument("--bucket", type=int, default=200_000, help="hash buckets for word n-grams (model size)")
    tq.add_argument("--seed", type=int, default=0)
    dq = sub.add_parser(
        "distill-quality",
        help="score a sample with a strong scorer and distil it into a fastText classifier (FineWeb-Edu recipe)",
    )
    dq.add_argument("--input", action="append", required=True, help="JSONL (.gz/.zst) or Parquet; repeatable; globs")
    dq.add_argument(
        "--scorer",
        required=True,
        help="module:function (texts -> scores) or hf:MODEL_FOLDER (a local causal LM; needs torch and transformers)",
    )
    dq.add_argument("--output", required=True, help="model path (MODEL.bin; metrics go to MODEL.bin.json)")
    dq.add_argument("--sample", type=int, default=20_000, help="documents to score (reservoir sample; default 20000)")
    dq.add_argument("--grades", type=int, default=6, help="score grades the classifier learns (default 6: 0-5)")
    dq.add_argument("--text-field", default="text")
    dq.add_argument("--group-field", help="field that keeps documents together in the train/held-out split")
    dq.add_argument("--test-fraction", type=float, default=0.2)
    dq.add_argument("--batch-size", type=int, default=64, help="documents per scorer call")
    dq.add_argument("--seed", type=int, default=0)
    d = sub.add_parser("demo", help="run the bundled demo corpus through the full pipeline")
    d.add_argument("--output", default="demo-output", help="output folder (default: ./demo-output)")
    d.add_argument("--address", help="Ray cluster address (default: a local cluster)")
    d.add_argument("--quiet", action="store_true")
    sv = sub.add_parser("serve", help="run the REST API (FastAPI under uvicorn)")
    sv.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument(
        "--database", help="SQLAlchemy URL (default: CURATION_DATABASE_URL, else sqlite:///curation-api.db)"
    )
    sv.add_argument("--ray-address", help="Ray dashboard address, e.g. http://HEAD:8265 (default: start a local head)")
    sv.add_argument("--tokens", help="tokens file (default: CURATION_API_TOKENS_FILE)")
    sv.add_argument(
        "--root",
        action="append",
        help="allowed root for job inputs/outputs (repeatable; default: CURATION_API_ROOTS, comma-separated)",
    )
    sv.add_argument("--data-dir", help="service state: job specs, local Ray head (default: ./curation-api-data)")
    sv.add_argument(
        "--generator-url",
        action="append",
        help="URL prefix synthesis generators may use (repeatable; "
        "default: none, so kind: synthesize with openai is refused)",
    )
    sv.add_argument(
        "--generator-key-env",
        action="append",
        help="environment variable a spec's generator.api_key_env may name (repeatable; default: none)",
    )
    sv.add_argument(
        "--allow-uri-options",
        action="store_true",
        help="let specs give object-store URI options (?endpoint_override=...); default: only a root's own",
    )
    sv.add_argument("--max-active-jobs", type=int, help="PENDING + RUNNING jobs per user (default 16; 429 beyond)")
    sv.add_argument(
        "--public-metrics",
        action="store_true",
        help="serve /metrics without a token, with every job's metrics (default: a token; users see their own jobs)",
    )
    from curation.inspection import cli as inspection_cli

    inspection_cli.add_parsers(sub)
    from curation.dedup import cli as index_cli

    index_cli.add_parser(sub)
    tk = sub.add_parser("token", help="create an API token: prints it once, and the tokens-file entry with its hash")
    tk.add_argument("name")
    tk.add_argument("--admin", action="store_true", help="sees and cancels every user's jobs")
    for name, help_ in (
        ("submit", "submit a job spec to the API"),
        ("status", "show a job"),
        ("logs", "print a job's logs"),
        ("cancel", "cancel a job"),
    ):
        c = sub.add_parser(name, help=help_ + " (token from CURATION_API_TOKEN)")
        c.add_argument("spec" if name == "submit" else "job_id")
        c.add_argument("--server", help="API URL (default: CURATION_SERVER, else http://127.0.0.1:8000)")
        if name == "logs":
            c.add_argument("--follow", "-f", action="store_true", help="stream until the job ends")
    args = p.parse_args(argv)
    if args.command == "serve":
        from api.server import serve

        return serve(
            args.host,
            args.port,
            args.database,
            args.ray_address,
            args.tokens,
            args.root,
            args.data_dir,
            generator_urls=args.generator_url,
            generator_key_envs=args.generator_key_env,
            allow_uri_options=args.allow_uri_options or None,
            max_active_jobs=args.max_active_jobs,
            metrics_public=args.public_metrics or None,
        )
    if args.command == "token":
        from api.settings import hash_token, new_token

        token = new_token()
        print(f"token (shown once; give it to {args.name} as CURATION_API_TOKEN): {token}", file=sys.stderr)
        print(
            yaml.safe_dump(
                {"tokens": [{"name": args.name, "sha256": hash_token(token), "admin": args.admin}]}, sort_keys=False
            ),
            end="",
        )
        return 0
    if args.command in ("submit", "status", "logs", "cancel"):
        from curation.client import run_client

        return run_client(
            args.command, getattr(args, "spec", None) or args.job_id, args.server, getattr(args, "follow", False)
        )
    if args.command in inspection_cli.COMMANDS:
        return inspection_cli.run(args)
    if args.command == "index":
        return index_cli.run(args)
    if args.command == "train-quality":
        return _train_quality(args)
    if args.command == "distill-quality":
        return _distill_quality(args)
    if args.command in ("run", "mix", "ablate", "synthesize"):
        return run_command(args.spec, output=args.output, address=args.address, quiet=args.quiet, command=args.command)
    if args.command == "demo":
        rc = run_command(None, spec_data=demo_spec(args.output), address=args.address, quiet=args.quiet)
        if rc == 0:
            out = Path(args.output).resolve()
            print(f"\ndemo output: {out}\n  curated documents: {out}/curated/\n  report: {out}/report.html")
        return rc
    return 2


if __name__ == "__main__":
    sys.exit(main())
