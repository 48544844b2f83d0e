"""The REST API: submit, list, inspect, cancel curation jobs, read their logs and artifacts.

Every job is recorded in the database before it goes to Ray, and a reconciler keeps the records in
step with Ray (also after this process restarts): a job Ray no longer knows, or a cluster that stays
unreachable, ends FAILED with the reason, never stuck in RUNNING.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import secrets
import time
from typing import Any

import yaml
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel
from sqlalchemy import func, select, text

from api.db import ACTIVE, STATES, Job, make_engine, migrate, session_factory, utcnow
from api.paths import check_paths, job_reads
from api.ray_backend import LocalRayHead, RayBackend, RayUnavailable
from api.settings import ApiSettings, TokenEntry, hash_token
from curation import __version__
from curation.outputs import Layout
from curation.spec import SpecError, parse_any_spec

log = logging.getLogger("curation.api")
ARTIFACTS = ("stats.json", "report.html", "job.yaml", "progress.json", "manifest.json", "funnel.png",
             "drop_reasons.png", "languages.png", "cluster_sizes.png")
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


def _job_out(job: Job, with_output: bool = False) -> JobOut:
    out = JobOut(id=job.id, name=job.name, kind=job.kind or "curate", owner=job.owner, state=job.state,
                 output=job.output,
                 message=job.message, created_at=job.created_at, started_at=job.started_at,
                 finished_at=job.finished_at)
    if with_output:
        out.progress = _read_json(job.output, "progress.json")
        out.stats = _read_json(job.output, "stats.json")
    return out


def _read_json(output: str, name: str) -> dict | None:
    try:
        layout = Layout(output)
        return layout.read_json(layout.path(name))
    except Exception:  # an output that is gone or unreachable is reported as "no data yet"
        return None


class _BodyLimit:
    """ASGI middleware: 413 for request bodies over the limit, declared or streamed."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

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
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await JSONResponse({"detail": f"request body over {self.limit} bytes"}, 413)(scope, receive, send)


class _TooLarge(Exception):
    pass


def create_app(settings: ApiSettings) -> FastAPI:
    """The FastAPI application; Ray and the database are set up when it starts (lifespan)."""
    registry = CollectorRegistry()
    requests_total = Counter("curation_api_requests_total", "HTTP requests", ["method", "route", "status"],
                             registry=registry)
    latency = Histogram("curation_api_request_seconds", "HTTP request latency", ["route"], registry=registry)
    jobs_gauge = Gauge("curation_jobs", "jobs by state", ["state"], registry=registry)
    tokens = settings.token_lookup()
    bearer = HTTPBearer(auto_error=False, description="an API token (see `curate token`)")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = make_engine(settings.database_url)
        migrate(engine)
        app.state.sessions = session_factory(engine)
        app.state.head = None
        address = settings.ray_address
        if not address:
            app.state.head = LocalRayHead(settings.data_dir / "ray")
            address = await asyncio.to_thread(app.state.head.start)
        app.state.backend = RayBackend(address, settings.job_python)
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
            engine.dispose()

    app = FastAPI(title="corpus-curation", version=__version__, lifespan=lifespan,
                  description="Submit, watch and cancel curation jobs that run on Ray.")
    app.add_middleware(_BodyLimit, limit=settings.max_body_bytes)

    @app.middleware("http")
    async def _metrics(request: Request, call_next):
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        requests_total.labels(request.method, path, str(response.status_code)).inc()
        latency.labels(path).observe(time.perf_counter() - t0)
        return response

    def principal(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> TokenEntry:
        entry = tokens.get(hash_token(creds.credentials)) if creds is not None else None
        if entry is None:
            raise HTTPException(401, "missing or unknown bearer token", headers={"WWW-Authenticate": "Bearer"})
        return entry

    def sessions(request: Request):
        with request.app.state.sessions() as s:
            yield s

    def owned(job_id: str, who: TokenEntry, s) -> Job:
        job = s.get(Job, job_id)
        if job is None or (job.owner != who.name and not who.admin):
            raise HTTPException(404, f"no job {job_id}")  # another user's job does not exist for you
        return job

    @app.get("/healthz", tags=["service"])
    def healthz(s=Depends(sessions)) -> dict[str, str]:
        s.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__}

    @app.get("/metrics", tags=["service"], response_class=PlainTextResponse)
    def metrics(s=Depends(sessions)) -> Response:
        counts = dict(s.execute(select(Job.state, func.count()).group_by(Job.state)).all())
        for state in STATES:
            jobs_gauge.labels(state).set(counts.get(state, 0))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/jobs", status_code=201, response_model=JobOut, tags=["jobs"], openapi_extra={"requestBody": {
        "required": True, "description": "the job spec (the same YAML `curate run` takes), as JSON or YAML",
        "content": {"application/json": {"schema": {"type": "object"}},
                    "application/yaml": {"schema": {"type": "string"}}}}})
    async def submit(request: Request, who: TokenEntry = Depends(principal), s=Depends(sessions)) -> JobOut:
        raw = await request.body()
        ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        try:
            data = yaml.safe_load(raw) if "yaml" in ctype else json.loads(raw or b"null")
        except (ValueError, yaml.YAMLError) as e:
            raise HTTPException(422, [{"loc": ["body"], "msg": f"not valid {'YAML' if 'yaml' in ctype else 'JSON'}: "
                                                              f"{str(e)[:200]}", "type": "parse_error"}]) from None
        try:
            job, spec_yaml = parse_any_spec(data)
        except SpecError as e:
            raise HTTPException(422, [{"loc": ["body", *path.split(".")] if path else ["body"], "msg": msg,
                                       "type": "spec_error"} for path, msg in e.errors]) from None
        bad = check_paths(job_reads(job), job.output, settings.roots)
        if bad:
            raise HTTPException(422, [{"loc": ["body", *p.split(".")], "msg": m, "type": "path_error"} for p, m in bad])
        job_id = "cj-" + secrets.token_hex(8)
        workdir = settings.data_dir / "jobs" / job_id
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "job.yaml").write_text(spec_yaml, encoding="utf-8")
        row = Job(id=job_id, owner=who.name, name=job.name, kind=job.kind, state="PENDING",
                  spec_yaml=spec_yaml, output=job.output)
        s.add(row)
        s.commit()
        try:
            row.ray_submission_id = await asyncio.to_thread(
                request.app.state.backend.submit, job_id, workdir, {"owner": who.name, "name": job.name})
        except RayUnavailable as e:
            row.state, row.message, row.finished_at = "FAILED", f"not submitted: {e}", utcnow()
        s.commit()
        log.info("job %s submitted by %s (%s)", job_id, who.name, row.state)
        return _job_out(row)

    @app.get("/v1/jobs", response_model=JobList, tags=["jobs"])
    def list_jobs(state: str | None = Query(None, pattern="^(" + "|".join(STATES) + ")$"),
                  name: str | None = Query(None, max_length=200), owner: str | None = Query(None, max_length=64),
                  limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=10**9),
                  who: TokenEntry = Depends(principal), s=Depends(sessions)) -> JobList:
        q = select(Job)
        if not who.admin:
            q = q.where(Job.owner == who.name)
        elif owner:
            q = q.where(Job.owner == owner)
        if state:
            q = q.where(Job.state == state)
        if name:
            q = q.where(Job.name == name)
        total = s.execute(select(func.count()).select_from(q.subquery())).scalar_one()
        rows = s.execute(q.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)).scalars().all()
        return JobList(jobs=[_job_out(r) for r in rows], total=total, limit=limit, offset=offset)

    @app.get("/v1/jobs/{job_id}", response_model=JobOut, tags=["jobs"])
    def get_job(job_id: str, who: TokenEntry = Depends(principal), s=Depends(sessions)) -> JobOut:
        return _job_out(owned(job_id, who, s), with_output=True)

    @app.post("/v1/jobs/{job_id}/cancel", response_model=JobOut, status_code=202, tags=["jobs"])
    async def cancel(job_id: str, request: Request, who: TokenEntry = Depends(principal),
                     s=Depends(sessions)) -> JobOut:
        job = owned(job_id, who, s)
        if job.state not in ACTIVE:
            raise HTTPException(409, f"job {job_id} is already {job.state}")
        if job.ray_submission_id is None:
            job.state, job.message, job.finished_at = "CANCELLED", "cancelled before it reached Ray", utcnow()
        else:
            try:
                await asyncio.to_thread(request.app.state.backend.stop, job.ray_submission_id)
            except RayUnavailable as e:
                raise HTTPException(503, str(e)) from None
            job.message = f"cancel requested by {who.name}"
        s.commit()
        return _job_out(job)

    @app.get("/v1/jobs/{job_id}/logs", tags=["jobs"], response_model=LogPage,
             responses={200: {"content": {"text/plain": {}}, "description": "a page of lines, or a stream"}})
    async def logs(job_id: str, request: Request, offset: int = Query(0, ge=0, le=10**9),
                   limit: int = Query(1000, ge=1, le=100_000), follow: bool = False,
                   who: TokenEntry = Depends(principal), s=Depends(sessions)):
        job = owned(job_id, who, s)
        backend: RayBackend = request.app.state.backend
        if job.ray_submission_id is None:
            return LogPage(lines=[], offset=offset, next_offset=offset, total=0)
        if follow:
            async def stream():
                try:
                    async for chunk in backend.tail(job.ray_submission_id):
                        yield chunk
                except Exception as e:  # the cluster went away mid-stream
                    yield f"\n[log stream ended: {e}]\n"
            return StreamingResponse(stream(), media_type="text/plain")
        try:
            lines = (await asyncio.to_thread(backend.logs, job.ray_submission_id)).splitlines()
        except RayUnavailable as e:
            raise HTTPException(503, str(e)) from None
        page = lines[offset:offset + limit]
        return LogPage(lines=page, offset=offset, next_offset=offset + len(page), total=len(lines))

    @app.get("/v1/jobs/{job_id}/artifacts", tags=["jobs"])
    def artifacts(job_id: str, who: TokenEntry = Depends(principal), s=Depends(sessions)) -> dict[str, Any]:
        job = owned(job_id, who, s)
        found = []
        try:
            layout = Layout(job.output)
            for name in ARTIFACTS:
                info = layout.fs.get_file_info(layout.path(name))
                if info.size is not None and info.type.name == "File":
                    found.append({"name": name, "bytes": info.size, "url": f"/v1/jobs/{job_id}/artifacts/{name}"})
        except Exception:
            pass
        return {"job": job_id, "output": job.output, "artifacts": found,
                "stats": _read_json(job.output, "stats.json"), "manifest": _read_json(job.output, "manifest.json")}

    @app.get("/v1/jobs/{job_id}/artifacts/{name}", tags=["jobs"],
             responses={200: {"content": {"application/json": {}, "text/html": {}, "image/png": {}}}})
    def artifact(job_id: str, name: str, who: TokenEntry = Depends(principal), s=Depends(sessions)) -> Response:
        job = owned(job_id, who, s)
        if name not in ARTIFACTS:
            raise HTTPException(404, f"no artifact {name!r} (one of: {', '.join(ARTIFACTS)})")
        try:
            layout = Layout(job.output)
            with layout.fs.open_input_stream(layout.path(name)) as f:
                data = f.read()
        except (FileNotFoundError, OSError):
            raise HTTPException(404, f"job {job_id} has no {name} yet") from None
        media = {"json": "application/json", "html": "text/html", "png": "image/png",
                 "yaml": "application/yaml"}[name.rsplit(".", 1)[1]]
        return Response(data, media_type=media)

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
                job.message = ("lost with the Ray cluster: Ray no longer knows this job "
                               "(the cluster was restarted or replaced)")
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
