"""The REST API: submit, list, inspect, cancel curation jobs, read their logs and artifacts.

Every job is recorded in the database before it goes to Ray, and a reconciler keeps the records in
step with Ray (also after this process restarts): a job Ray no longer knows, or a cluster that stays
unreachable, ends FAILED with the reason, never stuck in RUNNING.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import logging
import os
import secrets
import time
from collections import Counter as Tally
from typing import Any, Callable, TypeVar
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel
from sqlalchemy import func, or_, select, text, update

from api.body import BodyError, parse_body
from api.db import ACTIVE, STATES, Job, Lock, make_engine, migrate, session_factory, utcnow
from api.errors import error_responses, one_error_model
from api.job_metrics import render as render_job_metrics
from api.paths import check_generator, check_paths
from api.ray_backend import LocalRayHead, RayBackend, RayUnavailable
from api.settings import ApiSettings, TokenEntry, TokenStore, hash_token
from curation import __version__
from curation.io.policy import ENV as POLICY_ENV
from curation.io.policy import PathPolicy, declared_reads, guarding, is_uri, path_key
from curation.kinds import parse_any_spec
from curation.outputs import Layout
from curation.spec import SpecError

T = TypeVar("T")
MAX_ERRORS = 50  # errors listed in one 422
MAX_MESSAGE = 500  # characters of one error message
MAX_DENIED = 1000  # other users' outputs a job's inputs may cover (they travel in the job's environment)

log = logging.getLogger("curation.api")
ARTIFACTS = (
    "stats.json",
    "report.html",
    "job.yaml",
    "progress.json",
    "manifest.json",
    "plan.json",
    "funnel.png",
    "drop_reasons.png",
    "languages.png",
    "cluster_sizes.png",
)
LOST_AFTER_SECONDS = 60.0  # a cluster unreachable this long has lost its jobs


class JobOut(BaseModel):
    id: str
    name: str
    kind: str = "curate"  # curate | mix | ablate | synthesize
    owner: str
    state: str
    output: str
    message: str | None = None
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    progress: dict[str, Any] | None = None
    stats: dict[str, Any] | None = None


class JobList(BaseModel):
    jobs: list[JobOut]
    total: int
    limit: int
    offset: int


class LogPage(BaseModel):
    lines: list[str]
    offset: int
    next_offset: int
    total: int


def _job_out(job: Job, progress: dict | None = None, stats: dict | None = None) -> JobOut:
    return JobOut(
        id=job.id,
        name=job.name,
        kind=job.kind or "curate",
        owner=job.owner,
        state=job.state,
        output=job.output,
        message=job.message,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        progress=progress,
        stats=stats,
    )


def _read_json(output: str, name: str) -> dict | None:
    try:
        layout = Layout(output)
        return layout.read_json(_artifact_path(layout, name))
    except Exception:  # an output that is gone, unreachable or unsafe is reported as "no data yet"
        return None


def _artifact_path(layout: Layout, name: str) -> str:
    """The path of an artifact in an output folder, refusing links: a user who can write into a root could
    otherwise plant `OUT/stats.json -> /etc/shadow` and have the service serve the target."""
    path = layout.path(name)
    if is_uri(layout.uri):
        return path
    real_dir = os.path.realpath(layout.root)
    if os.path.islink(path) or os.path.realpath(path) != os.path.join(real_dir, name):
        raise FileNotFoundError(f"{path} is a link")
    return path


METRICS_FINISHED_JOBS = 5000  # the newest finished jobs whose durations /metrics summarizes


def _errors(kind: str, errors: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """422/409 detail entries: the key path under body, the message bounded in length and count."""
    out = [
        {"loc": ["body", *key.split(".")] if key else ["body"], "msg": msg[:MAX_MESSAGE], "type": kind}
        for key, msg in errors[:MAX_ERRORS]
    ]
    if len(errors) > MAX_ERRORS:
        out.append({"loc": ["body"], "msg": f"... and {len(errors) - MAX_ERRORS} more", "type": kind})
    return out


def _overlapping(key: str):
    """Jobs whose output is `key`, holds it, or lies under it (indexed: IN over the ancestors, LIKE a prefix)."""
    esc = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(Job.output_key.in_(_ancestors(key)), Job.output_key.like(esc + "/%", escape="\\"))


def _ancestors(key: str) -> list[str]:
    """`key` and every folder above it, in the form `path_key` gives (`s3://b/x/y` -> `s3://b/x`, `s3://b`)."""
    head, sep, rest = key.partition("://")
    if not sep:
        head, rest = "", key
    parts = rest.split("/")
    out = []
    for i in range(len(parts), 0, -1):
        p = "/".join(parts[:i])
        if p:
            out.append(f"{head}://{p}" if sep else p)
    return out


class _BodyLimit:
    """ASGI middleware: 413 for request bodies over the limit, declared or streamed."""

    def __init__(self, app, limit: int, timeout: float = 30.0):
        self.app, self.limit, self.timeout = app, limit, timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await JSONResponse({"detail": f"request body over {self.limit} bytes"}, 413)(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            try:
                message = await asyncio.wait_for(receive(), self.timeout)
            except asyncio.TimeoutError:
                raise _TooSlow() from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await JSONResponse({"detail": f"request body over {self.limit} bytes"}, 413)(scope, receive, send)
        except _TooSlow:
            await JSONResponse({"detail": f"request body not received within {self.timeout:g}s"}, 408)(
                scope, receive, send
            )


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


def create_app(settings: ApiSettings) -> FastAPI:
    """The FastAPI application; Ray and the database are set up when it starts (lifespan).

    No route holds a database session while it waits on anything else: the job store is read and written in
    short sessions on worker threads, job outputs are read on a bounded pool of their own with a timeout (a
    storage that never answers costs a slot, not the service), and log streams are bounded per user."""
    registry = CollectorRegistry()
    requests_total = Counter(
        "curation_api_requests_total", "HTTP requests", ["method", "route", "status"], registry=registry
    )
    latency = Histogram("curation_api_request_seconds", "HTTP request latency", ["route"], registry=registry)
    jobs_gauge = Gauge("curation_jobs", "jobs by state", ["state"], registry=registry)
    tokens = TokenStore(settings)
    bearer = HTTPBearer(auto_error=False, description="an API token (see `curate token`)")
    storage_pool = concurrent.futures.ThreadPoolExecutor(settings.storage_threads, thread_name_prefix="storage")
    # Slots per storage (bucket or host, or the local disks): one that never answers holds its own slots,
    # not every user's. A read stuck past its timeout keeps its slot (and its thread) until the storage lets
    # go of it, so stuck reads never grow past the slots.
    per_storage = max(1, settings.storage_threads // 4)
    storage_slots: dict[str, asyncio.Semaphore] = {}
    streams: Tally[str] = Tally()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        # Database calls and Ray calls run on the loop's default pool: make it large enough that a slow Ray
        # does not starve the job store.
        asyncio.get_running_loop().set_default_executor(
            concurrent.futures.ThreadPoolExecutor(32, thread_name_prefix="api")
        )
        engine = make_engine(settings.database_url)
        await asyncio.to_thread(migrate, engine)
        app.state.sessions = session_factory(engine)
        app.state.head = None
        address = settings.ray_address
        if not address:
            app.state.head = LocalRayHead(settings.data_dir / "ray")
            address = await asyncio.to_thread(app.state.head.start)
        app.state.backend = RayBackend(address or "", settings.job_python)
        app.state.unreachable_since = None
        app.state.reconcile_seconds = settings.reconcile_seconds
        task = asyncio.create_task(_reconcile_forever(app))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if app.state.head is not None:
                await asyncio.to_thread(app.state.head.stop)
            storage_pool.shutdown(wait=False, cancel_futures=True)
            engine.dispose()

    app = FastAPI(
        title="corpus-curation",
        version=__version__,
        lifespan=lifespan,
        description="Submit, watch and cancel curation jobs that run on Ray.",
        # Operation ids are the handlers' names (submit, list_jobs, get_job, ...): stable, and what generated
        # clients call their methods; tests/test_api.py pins the set.
        generate_unique_id_function=lambda route: route.name,
    )
    app.add_middleware(_BodyLimit, limit=settings.max_body_bytes, timeout=settings.body_timeout_s)
    app.openapi = lambda: one_error_model(app)  # type: ignore[method-assign]

    @app.middleware("http")
    async def _metrics(request: Request, call_next):
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        requests_total.labels(request.method, path, str(response.status_code)).inc()
        latency.labels(path).observe(time.perf_counter() - t0)
        return response

    async def caller(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> TokenEntry | None:
        return tokens.get(hash_token(creds.credentials)) if creds is not None else None

    def unauthorized() -> HTTPException:
        return HTTPException(401, "missing or unknown bearer token", headers={"WWW-Authenticate": "Bearer"})

    async def principal(entry: TokenEntry | None = Depends(caller)) -> TokenEntry:
        if entry is None:
            raise unauthorized()
        return entry

    async def db(request: Request, fn: Callable[[Any], T]) -> T:
        """`fn(session)` in a short session on a worker thread (commits are fn's own)."""

        def run() -> T:
            with request.app.state.sessions() as s:
                return fn(s)

        return await asyncio.to_thread(run)

    async def storage(output: str, fn: Callable[[], T], what: str) -> T:
        """`fn()` reading the job output `output`, on the storage pool with a timeout; 503 when the storage is
        slow or all of its slots are taken by reads that have not come back."""
        store = f"{urlsplit(output).scheme}://{urlsplit(output).netloc}" if is_uri(output) else "local"
        slots = storage_slots.setdefault(store, asyncio.Semaphore(per_storage))
        loop = asyncio.get_running_loop()
        try:  # a busy storage makes a read wait for a slot, a storage that never answers makes it give up
            await asyncio.wait_for(slots.acquire(), settings.storage_timeout_s)
        except asyncio.TimeoutError:
            raise HTTPException(
                503,
                f"{what}: the job outputs' storage {store} is not answering (all "
                f"{per_storage} reads in flight); try again later",
            ) from None

        def run() -> T:
            try:
                return fn()
            finally:
                loop.call_soon_threadsafe(slots.release)

        future = loop.run_in_executor(storage_pool, run)
        try:
            return await asyncio.wait_for(asyncio.shield(future), settings.storage_timeout_s)
        except asyncio.TimeoutError:
            raise HTTPException(
                503, f"{what}: the job's output did not answer within {settings.storage_timeout_s:g}s"
            ) from None

    async def set_fields(request: Request, job_id: str, fields: dict[str, Any]) -> Job:
        """Update a job's record in a short session; the updated record."""

        def record(s) -> Job:
            row = s.get(Job, job_id)
            for k, v in fields.items():
                setattr(row, k, v)
            s.commit()
            return row

        return await db(request, record)

    async def owned(request: Request, job_id: str, who: TokenEntry) -> Job:
        job = await db(request, lambda s: s.get(Job, job_id))
        if job is None or (job.owner != who.name and not who.admin):
            raise HTTPException(404, f"no job {job_id}")  # another user's job does not exist for you
        return job

    @app.get("/healthz", tags=["service"], responses=error_responses(503, _503="the job store is not answering"))
    async def healthz(request: Request) -> dict[str, str]:
        try:
            await asyncio.wait_for(db(request, lambda s: s.execute(text("SELECT 1"))), 5)
        except Exception as e:
            raise HTTPException(503, f"job store not answering: {type(e).__name__}") from None
        return {"status": "ok", "version": __version__}

    @app.get(
        "/metrics",
        tags=["service"],
        responses={
            200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
            **error_responses(401),
        },
    )
    async def metrics(request: Request, who: TokenEntry | None = Depends(caller)) -> Response:
        # Behind a token like every route, unless the operator made metrics public (a scraper without a token
        # then sees every job's metrics: their ids, names and owners). An admin token sees every job, a user's
        # token its own; jobs by state (curation_jobs) are the whole service's, as before per-job metrics.
        if who is None and not settings.metrics_public:
            raise unauthorized()
        everyone = settings.metrics_public or (who is not None and who.admin)

        def rows(s):
            mine = (lambda q: q) if everyone else (lambda q: q.where(Job.owner == who.name))
            counts = dict(
                ((k or "curate", st), n)
                for k, st, n in s.execute(mine(select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state)))
            )
            running = s.execute(mine(select(Job).where(Job.state == "RUNNING")).limit(1000)).scalars().all()
            finished = (
                s.execute(
                    mine(select(Job).where(Job.finished_at.is_not(None), Job.started_at.is_not(None)))
                    .order_by(Job.finished_at.desc())
                    .limit(METRICS_FINISHED_JOBS)
                )
                .scalars()
                .all()
            )
            by_state = dict(s.execute(select(Job.state, func.count()).group_by(Job.state)).all())
            return counts, running, finished, by_state

        counts, running, finished, by_state = await db(request, rows)
        for state in STATES:
            jobs_gauge.labels(state).set(by_state.get(state, 0))

        async def progress_of(job: Job) -> dict | None:
            try:
                return await storage(job.output, lambda: _read_json(job.output, "progress.json"), f"job {job.id}")
            except HTTPException:  # a storage that does not answer costs this job's figures, not the scrape
                return None

        progress = await asyncio.gather(*(progress_of(j) for j in running))
        jobs_text = render_job_metrics(list(zip(running, progress)), finished, counts)
        return Response(generate_latest(registry) + jobs_text, media_type=CONTENT_TYPE_LATEST)

    def validate(raw: bytes, yaml_body: bool):
        """Body -> (job, spec YAML), or HTTPException 422 (runs on a worker thread)."""
        try:
            data = parse_body(raw, yaml_body, max_nodes=settings.max_spec_nodes, max_depth=settings.max_spec_depth)
        except BodyError as e:
            raise HTTPException(422, _errors("parse_error", [("", str(e))])) from None
        policy = PathPolicy(tuple(settings.roots), (), settings.allow_uri_options)
        try:
            with guarding(policy):  # paths are judged before any existence check
                job, spec_yaml = parse_any_spec(data)
        except SpecError as e:
            raise HTTPException(422, _errors("spec_error", e.errors)) from None
        except RecursionError:
            raise HTTPException(422, _errors("spec_error", [("", "the spec is nested too deeply")])) from None
        bad = check_generator(job, settings.generator_urls, settings.generator_key_envs)
        if bad:
            raise HTTPException(422, _errors("policy_error", bad))
        return job, spec_yaml

    def others_outputs_under(s, who: TokenEntry, reads: list[str]) -> list[str]:
        """Outputs of other users' jobs that a read could reach: lying under its fixed part (a folder or glob
        expands into them) or holding it. Only these travel with the job, so its policy stays small."""
        found: set[str] = set()
        for p in reads:
            base = path_key(p).key
            if not base:
                continue
            if any(c in base for c in "*?["):
                base = base[: min(base.find(c) for c in "*?[" if c in base)].rsplit("/", 1)[0]
            found.update(
                s.execute(
                    select(Job.output_key)
                    .where(Job.owner != who.name, _overlapping(base))
                    .distinct()
                    .limit(MAX_DENIED + 1)
                )
                .scalars()
                .all()
            )
        return sorted(found)

    def claim(s, job_id: str, who: TokenEntry, job, spec_yaml: str, key: str) -> Job:
        """Record the job if its output overlaps no other job's and the user is under the active-jobs limit;
        one transaction behind the lock row, so two racing submissions cannot both take one folder."""
        s.execute(update(Lock).where(Lock.name == "submit").values(n=Lock.n + 1))
        active = s.execute(
            select(func.count()).select_from(Job).where(Job.owner == who.name, Job.state.in_(ACTIVE))
        ).scalar_one()
        if active >= settings.max_active_jobs_per_user:
            s.rollback()
            raise HTTPException(
                429,
                f"{who.name} has {active} active jobs (at most "
                f"{settings.max_active_jobs_per_user}); wait for one to finish or cancel one",
            )
        # Conflicts only: your own finished jobs on this very folder are not one (a rerun resumes, or is
        # refused by the job itself when the spec differs).
        overlapping = (
            s.execute(
                select(Job)
                .where(_overlapping(key), or_(Job.owner != who.name, Job.output_key != key, Job.state.in_(ACTIVE)))
                .limit(1)
            )
            .scalars()
            .all()
        )
        for other in overlapping:
            if other.owner != who.name:
                why = (
                    "is the output of another user's job"
                    if other.output_key == key
                    else "overlaps the output of another user's job"
                )
            elif other.output_key != key:
                why = f"overlaps the output of your job {other.id} ({other.output})"
            else:
                why = f"is in use by your job {other.id} ({other.state}); wait for it or cancel it"
            s.rollback()
            raise HTTPException(409, _errors("output_conflict", [("output", why)]))
        row = Job(
            id=job_id,
            owner=who.name,
            name=job.name,
            kind=job.kind,
            state="PENDING",
            spec_yaml=spec_yaml,
            output=job.output,
            output_key=key,
        )
        s.add(row)
        s.commit()
        return row

    @app.post(
        "/v1/jobs",
        status_code=201,
        response_model=JobOut,
        tags=["jobs"],
        responses=error_responses(
            401,
            408,
            409,
            413,
            422,
            429,
            _409="the output overlaps another job's output (or one of yours still running)",
            _422="a bad spec, a path outside the roots or another user's, a generator not allowed",
            _429="too many active jobs for this user",
        ),
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "the job spec (the same YAML `curate run` takes), as JSON or YAML",
                "content": {
                    "application/json": {"schema": {"type": "object"}},
                    "application/yaml": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def submit(request: Request, who: TokenEntry = Depends(principal)) -> JobOut:
        raw = await request.body()
        ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        job, spec_yaml = await asyncio.to_thread(validate, raw, "yaml" in ctype)
        deny: list[str] = []
        if not who.admin:  # other users' outputs where this job reads: refused now, and denied to the job
            deny = await db(request, lambda s: others_outputs_under(s, who, [p for _, p in declared_reads(job)]))
            if len(deny) > MAX_DENIED:
                raise HTTPException(
                    422,
                    _errors(
                        "path_error",
                        [
                            (
                                "inputs",
                                (
                                    f"the inputs cover the outputs of {len(deny)} jobs of other users; name your inputs "
                                    "more narrowly"
                                ),
                            )
                        ],
                    ),
                )
        policy = PathPolicy(tuple(settings.roots), tuple(deny), settings.allow_uri_options)
        bad = check_paths(job, policy)
        if bad:
            raise HTTPException(422, _errors("path_error", bad))
        job_id = "cj-" + secrets.token_hex(8)
        key = path_key(job.output).key
        await db(request, lambda s: claim(s, job_id, who, job, spec_yaml, key))
        workdir = settings.data_dir / "jobs" / job_id

        def write_workdir() -> None:  # what Ray uploads as the job's working directory
            workdir.mkdir(parents=True, exist_ok=True)
            (workdir / "job.yaml").write_text(spec_yaml, encoding="utf-8")

        await asyncio.to_thread(write_workdir)
        try:
            sid = await asyncio.to_thread(
                request.app.state.backend.submit,
                job_id,
                workdir,
                {"owner": who.name, "name": job.name},
                {POLICY_ENV: policy.to_json()},
            )
            fields = {"ray_submission_id": sid}
        except RayUnavailable as e:
            fields = {"state": "FAILED", "message": f"not submitted: {e}", "finished_at": utcnow()}
        row = await set_fields(request, job_id, fields)
        log.info("job %s submitted by %s (%s)", job_id, who.name, row.state)
        return _job_out(row)

    @app.get("/v1/jobs", response_model=JobList, tags=["jobs"], responses=error_responses(401, 422))
    async def list_jobs(
        request: Request,
        state: str | None = Query(None, pattern="^(" + "|".join(STATES) + ")$"),
        name: str | None = Query(None, max_length=200),
        owner: str | None = Query(None, max_length=64),
        limit: int = Query(50, ge=1, le=500),
        offset: int = Query(0, ge=0, le=10**9),
        who: TokenEntry = Depends(principal),
    ) -> JobList:
        q = select(Job)
        if not who.admin:
            q = q.where(Job.owner == who.name)
        elif owner:
            q = q.where(Job.owner == owner)
        if state:
            q = q.where(Job.state == state)
        if name:
            q = q.where(Job.name == name)

        def page(s):
            total = s.execute(select(func.count()).select_from(q.subquery())).scalar_one()
            return total, s.execute(
                q.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
            ).scalars().all()

        total, rows = await db(request, page)
        return JobList(jobs=[_job_out(r) for r in rows], total=total, limit=limit, offset=offset)

    @app.get("/v1/jobs/{job_id}", response_model=JobOut, tags=["jobs"], responses=error_responses(401, 404))
    async def get_job(job_id: str, request: Request, who: TokenEntry = Depends(principal)) -> JobOut:
        job = await owned(request, job_id, who)
        try:
            progress, stats = await storage(
                job.output,
                lambda: (_read_json(job.output, "progress.json"), _read_json(job.output, "stats.json")),
                f"job {job_id}",
            )
        except HTTPException as e:  # the record still answers; the output's figures are left out, with why
            out = _job_out(job)
            out.message = (job.message + " | " if job.message else "") + str(e.detail)
            return out
        return _job_out(job, progress, stats)

    @app.post(
        "/v1/jobs/{job_id}/cancel",
        response_model=JobOut,
        status_code=202,
        tags=["jobs"],
        responses=error_responses(401, 404, 408, 409, 413, 503, _409="the job has already finished"),
    )
    async def cancel(job_id: str, request: Request, who: TokenEntry = Depends(principal)) -> JobOut:
        job = await owned(request, job_id, who)
        if job.state not in ACTIVE:
            raise HTTPException(409, f"job {job_id} is already {job.state}")
        if job.ray_submission_id is None:
            fields = {"state": "CANCELLED", "message": "cancelled before it reached Ray", "finished_at": utcnow()}
        else:
            try:
                await asyncio.to_thread(request.app.state.backend.stop, job.ray_submission_id)
            except RayUnavailable as e:
                raise HTTPException(503, str(e)) from None
            fields = {"message": f"cancel requested by {who.name}"}
        return _job_out(await set_fields(request, job_id, fields))

    @app.get(
        "/v1/jobs/{job_id}/logs",
        tags=["jobs"],
        response_model=LogPage,
        responses={
            200: {"content": {"text/plain": {}}, "description": "a page of lines, or a stream"},
            **error_responses(401, 404, 422, 429, 503, _429="too many log streams open"),
        },
    )
    async def logs(
        job_id: str,
        request: Request,
        offset: int = Query(0, ge=0, le=10**9),
        limit: int = Query(1000, ge=1, le=100_000),
        follow: bool = False,
        who: TokenEntry = Depends(principal),
    ):
        job = await owned(request, job_id, who)
        backend: RayBackend = request.app.state.backend
        if job.ray_submission_id is None:
            return LogPage(lines=[], offset=offset, next_offset=offset, total=0)
        if follow:
            if (
                streams[who.name] >= settings.max_log_streams_per_user
                or sum(streams.values()) >= settings.max_log_streams
            ):
                raise HTTPException(
                    429,
                    f"too many log streams open (at most {settings.max_log_streams_per_user} "
                    "per user); close one, or page with offset/limit",
                )
            streams[who.name] += 1

            async def stream():
                try:
                    async for chunk in backend.tail(job.ray_submission_id):
                        yield chunk
                except Exception as e:  # the cluster went away mid-stream
                    yield f"\n[log stream ended: {e}]\n"
                finally:
                    streams[who.name] -= 1

            return StreamingResponse(stream(), media_type="text/plain")
        try:
            lines = (await asyncio.to_thread(backend.logs, job.ray_submission_id)).splitlines()
        except RayUnavailable as e:
            raise HTTPException(503, str(e)) from None
        page = lines[offset : offset + limit]
        return LogPage(lines=page, offset=offset, next_offset=offset + len(page), total=len(lines))

    @app.get("/v1/jobs/{job_id}/artifacts", tags=["jobs"], responses=error_responses(401, 404, 503))
    async def artifacts(job_id: str, request: Request, who: TokenEntry = Depends(principal)) -> dict[str, Any]:
        job = await owned(request, job_id, who)

        def listing() -> list[dict[str, Any]]:
            found = []
            try:
                layout = Layout(job.output)
                for name in ARTIFACTS:
                    try:
                        info = layout.fs.get_file_info(_artifact_path(layout, name))
                    except FileNotFoundError:
                        continue
                    if info.size is not None and info.type.name == "File":
                        found.append({"name": name, "bytes": info.size, "url": f"/v1/jobs/{job_id}/artifacts/{name}"})
            except Exception:
                pass
            return found

        found, stats, manifest = await storage(
            job.output,
            lambda: (listing(), _read_json(job.output, "stats.json"), _read_json(job.output, "manifest.json")),
            f"job {job_id}",
        )
        return {"job": job_id, "output": job.output, "artifacts": found, "stats": stats, "manifest": manifest}

    @app.get(
        "/v1/jobs/{job_id}/artifacts/{name}",
        tags=["jobs"],
        responses={
            200: {"content": {"application/json": {}, "text/html": {}, "image/png": {}}},
            **error_responses(401, 404, 503),
        },
    )
    async def artifact(job_id: str, name: str, request: Request, who: TokenEntry = Depends(principal)) -> Response:
        job = await owned(request, job_id, who)
        if name not in ARTIFACTS:
            raise HTTPException(404, f"no artifact {name!r} (one of: {', '.join(ARTIFACTS)})")

        def read() -> bytes | None:
            try:
                layout = Layout(job.output)
                with layout.fs.open_input_stream(_artifact_path(layout, name)) as f:
                    return f.read()
            except (FileNotFoundError, OSError):
                return None

        data = await storage(job.output, read, f"job {job_id}")
        if data is None:
            raise HTTPException(404, f"job {job_id} has no {name} yet")
        media = {"json": "application/json", "html": "text/html", "png": "image/png", "yaml": "application/yaml"}[
            name.rsplit(".", 1)[1]
        ]
        return Response(data, media_type=media)

    @app.get("/v1/jobs/{job_id}/samples", tags=["inspection"], responses=error_responses(401, 404, 422, 503))
    async def samples(
        job_id: str,
        request: Request,
        reason: str | None = Query(None, max_length=200, description="a drop reason, or (kept)"),
        lang: str | None = Query(None, max_length=32),
        q: str | None = Query(None, max_length=200, description="text the sample's excerpt contains"),
        limit: int = Query(200, ge=1, le=5000),
        who: TokenEntry = Depends(principal),
    ) -> dict[str, Any]:
        """The samples of what each rule removed (OUT/samples/), filtered; `reasons`: samples per reason."""
        from api import inspect

        job = await owned(request, job_id, who)
        return await storage(
            job.output, lambda: inspect.samples(inspect.SafeLayout(job.output), reason, lang, q, limit), f"job {job_id}"
        )

    @app.get("/v1/jobs/{job_id}/trace", tags=["inspection"], responses=error_responses(401, 404, 422, 503))
    async def trace(
        job_id: str,
        request: Request,
        doc_id: str | None = Query(None, max_length=1000, description="the document's id"),
        input: int | None = Query(None, ge=0, lt=2**31, description="or: the input file's ordinal ..."),
        position: int | None = Query(None, ge=0, lt=2**62, description="... and the record's position in it"),
        text_chars: int = Query(300, ge=0, le=1_000_000, description="characters of the document's text"),
        who: TokenEntry = Depends(principal),
    ) -> dict[str, Any]:
        """A document's lineage (as `curate trace`): input file and position, every stage's decision, its
        duplicate cluster, and where it was written (for a mixture, its shard and rows too)."""
        from api import inspect
        from curation.inspection.trace import TraceError
        from curation.inspection.trace import trace as trace_of

        if doc_id is None and (input is None or position is None):
            raise HTTPException(422, "give doc_id, or input and position")
        job = await owned(request, job_id, who)

        def read() -> dict[str, Any] | str:
            try:
                return trace_of(
                    inspect.SafeLayout(job.output), doc_id, ordinal=input, position=position, excerpt=text_chars
                )
            except (TraceError, FileNotFoundError) as e:
                return str(e)

        got = await storage(job.output, read, f"job {job_id}")
        if isinstance(got, str):
            raise HTTPException(404, got)
        return got

    @app.get("/v1/jobs/{job_id}/documents", tags=["inspection"], responses=error_responses(401, 404, 422, 503))
    async def documents(
        job_id: str,
        request: Request,
        status: str = Query("kept", pattern="^(kept|rejected|quarantined)$"),
        lang: str | None = Query(None, max_length=32),
        reason: str | None = Query(None, max_length=200),
        domain: str | None = Query(None, max_length=100),
        source: str | None = Query(None, max_length=200),
        limit: int = Query(20, ge=1, le=500),
        offset: int = Query(0, ge=0, le=10**7),
        who: TokenEntry = Depends(principal),
    ) -> dict[str, Any]:
        """A page of a job's curated, rejected or quarantined documents (text excerpts), filtered."""
        from api import inspect

        job = await owned(request, job_id, who)
        return await storage(
            job.output,
            lambda: inspect.documents(
                inspect.SafeLayout(job.output),
                status,
                lang=lang,
                reason=reason,
                domain=domain,
                source=source,
                limit=limit,
                offset=offset,
            ),
            f"job {job_id}",
        )

    @app.get("/v1/diff", tags=["inspection"], responses=error_responses(401, 404, 422, 503))
    async def diff(
        request: Request,
        a: str = Query(..., max_length=64, description="a job id"),
        b: str = Query(..., max_length=64, description="another job id (the same inputs)"),
        samples: int = Query(5, ge=0, le=50),
        who: TokenEntry = Depends(principal),
    ) -> dict[str, Any]:
        """Two curate jobs compared document by document (as `curate diff`)."""
        from api import inspect
        from curation.inspection.diff import DiffError
        from curation.inspection.diff import diff as diff_of

        job_a, job_b = await owned(request, a, who), await owned(request, b, who)

        def read() -> dict[str, Any] | str:
            try:
                return diff_of(inspect.SafeLayout(job_a.output), inspect.SafeLayout(job_b.output), samples=samples)
            except (DiffError, FileNotFoundError) as e:
                return str(e)

        got = await storage(job_a.output, read, f"diff {a} {b}")
        if isinstance(got, str):
            raise HTTPException(404, got)
        return got

    @app.get("/console", include_in_schema=False)
    async def console() -> Response:
        """The web console: one page, no build step; it calls this API with the token the user logs in with."""
        from api.console import page

        # the page's own inline script and styles, the API on this origin, nothing else
        csp = (
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
            "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
        return Response(page(), media_type="text/html", headers={"Content-Security-Policy": csp})

    return app


async def _reconcile_forever(app: FastAPI) -> None:
    while True:
        try:
            await asyncio.to_thread(reconcile, app)
        except Exception:  # keep reconciling; the next round may succeed
            log.exception("reconcile failed")
        await asyncio.sleep(app.state.reconcile_seconds)


def reconcile(app: FastAPI) -> None:
    """Bring active jobs' records in step with Ray (one round)."""
    backend: RayBackend = app.state.backend
    with app.state.sessions() as s:
        active = s.execute(select(Job).where(Job.state.in_(ACTIVE))).scalars().all()
        if not active:
            app.state.unreachable_since = None
            return
        now = utcnow()
        for job in active:
            if job.ray_submission_id is None:
                if (now - job.created_at).total_seconds() > LOST_AFTER_SECONDS:
                    job.state, job.message, job.finished_at = "FAILED", "never reached Ray", now
                continue
            try:
                state, message = backend.state(job.ray_submission_id)
            except RayUnavailable as e:
                since = app.state.unreachable_since = app.state.unreachable_since or time.monotonic()
                if time.monotonic() - since > LOST_AFTER_SECONDS:
                    for j in active:
                        j.state, j.finished_at = "FAILED", now
                        j.message = f"lost with the Ray cluster: unreachable for over {LOST_AFTER_SECONDS:.0f}s ({e})"
                break
            app.state.unreachable_since = None
            if state is None:
                job.state, job.finished_at = "FAILED", now
                job.message = (
                    "lost with the Ray cluster: Ray no longer knows this job (the cluster was restarted or replaced)"
                )
                continue
            if state != job.state:
                if state == "RUNNING" and job.started_at is None:
                    job.started_at = now
                if state not in ACTIVE:
                    job.finished_at = now
                    if message and state == "FAILED":
                        job.message = message[-2000:]
                    elif state == "CANCELLED":
                        job.message = job.message or "stopped in Ray"
                job.state = state
        s.commit()
