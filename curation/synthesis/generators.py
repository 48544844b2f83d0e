"""Generators: a list of prompts in, one `Generation` (text, or an error) per prompt out.

`OpenAIGenerator` talks to any server with the OpenAI chat or completions API (vLLM, SGLang, TGI, a
hosted API). The job calls `generate` from `concurrency` threads at once: the work happens on the
server, so threads waiting on sockets are all the client needs, and they keep one simple blocking
client per thread (requests), not an event loop. A request that gets 429, 5xx, a timeout or a broken
connection is retried with exponential backoff and jitter (honouring Retry-After), on the next server
when there are several; any other 4xx is final. `HFGenerator` runs a local Hugging Face causal LM (GPU
when present); nothing is downloaded.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from curation.synthesis.spec import GeneratorSpec

RETRYABLE_STATUS = frozenset({408, 409, 425, 429}) | frozenset(range(500, 600))


@dataclass
class Unit:
    """One prompt to generate: a (document, task) pair."""

    key: str
    messages: list[dict[str, str]]


@dataclass
class Generation:
    key: str
    text: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    attempts: int = 0  # tries of the request this unit was in
    requests: int = 0  # HTTP requests counted against this unit (a batch's count goes to its first unit)
    seconds: float = 0.0  # wall time of the request, retries included
    endpoint: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "text": self.text,
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "attempts": self.attempts,
            "seconds": round(self.seconds, 3),
            "endpoint": self.endpoint,
        }


@dataclass
class TransportStats:
    """What the generator saw on the wire in this run (thread-safe)."""

    requests: int = 0
    retries: int = 0
    errors: Counter = field(default_factory=Counter)  # "429", "500", "timeout", "connection", ...
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, requests: int = 0, retries: int = 0, error: str | None = None) -> None:
        with self.lock:
            self.requests += requests
            self.retries += retries
            if error:
                self.errors[error] += 1

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "retries": self.retries, "errors": dict(self.errors)}


def render_plain(messages: list[dict[str, str]]) -> str:
    """A conversation as one prompt string (completions API, models without a chat template)."""
    return "\n\n".join(m["content"] for m in messages) + "\n\n"


class _Retry(Exception):
    def __init__(self, kind: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.kind, self.retry_after = kind, retry_after


class OpenAIGenerator:
    """Client of OpenAI-compatible servers (see the module docstring)."""

    def __init__(self, spec: GeneratorSpec, sleep=time.sleep):
        self.spec = spec
        self.urls = spec.urls()
        self.concurrency = spec.concurrency
        self.batch_size = spec.batch_size if spec.api == "completions" else 1
        self.stats = TransportStats()
        self.sleep = sleep
        self._next = itertools.count()
        self._local = threading.local()
        self.headers = {"Content-Type": "application/json"}
        if spec.api_key_env:
            key = os.environ.get(spec.api_key_env)
            if not key:
                raise ValueError(f"generator.api_key_env: environment variable {spec.api_key_env} is not set")
            self.headers["Authorization"] = f"Bearer {key}"

    def _session(self):
        import requests

        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = requests.Session()
        return s

    def _body(self, units: list[Unit]) -> dict[str, Any]:
        sp = self.spec
        body: dict[str, Any] = {
            "model": sp.model,
            "max_tokens": sp.max_tokens,
            "temperature": sp.temperature,
            "top_p": sp.top_p,
        }
        if sp.seed is not None:
            body["seed"] = sp.seed
        if sp.api == "chat":
            body["messages"] = units[0].messages
        else:
            body["prompt"] = [render_plain(u.messages) for u in units]
        body.update(sp.extra_body)
        return body

    def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        import requests

        try:
            r = self._session().post(
                url, json=body, headers=self.headers, timeout=(min(10.0, self.spec.timeout_s), self.spec.timeout_s)
            )
        except requests.Timeout:
            raise _Retry("timeout", f"no answer within {self.spec.timeout_s:g} s") from None
        except requests.ConnectionError as e:
            raise _Retry("connection", f"connection failed: {str(e)[:200]}") from None
        if r.status_code == 200:
            try:
                return r.json()
            except ValueError:
                raise _Retry("bad_response", f"HTTP 200 with a body that is not JSON: {r.text[:200]!r}") from None
        detail = r.text[:300].replace("\n", " ")
        if r.status_code in RETRYABLE_STATUS:
            retry_after = None
            try:
                retry_after = float(r.headers.get("Retry-After", ""))
            except ValueError:
                pass
            raise _Retry(str(r.status_code), f"HTTP {r.status_code}: {detail}", retry_after)
        raise ValueError(f"HTTP {r.status_code}: {detail}")

    def _parse(self, units: list[Unit], data: dict[str, Any]) -> list[Generation]:
        choices = data.get("choices")
        if not isinstance(choices, list) or len(choices) != len(units):
            raise _Retry("bad_response", f"expected {len(units)} choice(s), got {str(choices)[:200]}")
        by_index = {c.get("index", i): c for i, c in enumerate(choices)}
        usage = data.get("usage") or {}
        n = len(units)
        out = []
        for i, u in enumerate(units):
            c = by_index.get(i, {})
            text = (c.get("message") or {}).get("content") if self.spec.api == "chat" else c.get("text")
            if not isinstance(text, str):
                raise _Retry("bad_response", f"choice {i} has no text: {str(c)[:200]}")
            # a batch's usage is one total: spread it over its prompts
            pt, ct = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            out.append(
                Generation(
                    u.key,
                    text=text,
                    finish_reason=c.get("finish_reason"),
                    prompt_tokens=pt // n + (pt % n if i == 0 else 0),
                    completion_tokens=ct // n + (ct % n if i == 0 else 0),
                )
            )
        return out

    def generate(self, units: list[Unit]) -> list[Generation]:
        """One request for `units` (one chat conversation, or a batch of completions prompts), retried
        as the spec says; never raises: failures come back as Generations with `error` set."""
        sp = self.spec
        path = "/chat/completions" if sp.api == "chat" else "/completions"
        body = self._body(units)
        t0 = time.monotonic()
        start = next(self._next)
        error = "no attempt made"
        attempt = 0
        for attempt in range(sp.max_retries + 1):
            base = self.urls[(start + attempt) % len(self.urls)]
            self.stats.add(requests=1, retries=1 if attempt else 0)
            try:
                gens = self._parse(units, self._post(base + path, body))
            except _Retry as e:
                self.stats.add(error=e.kind)
                error = str(e)
                if attempt < sp.max_retries:
                    delay = min(sp.max_backoff_s, sp.backoff_s * 2**attempt) * (0.5 + random.random() / 2)
                    if e.retry_after is not None:
                        delay = min(sp.max_backoff_s, max(delay, e.retry_after))
                    self.sleep(delay)
                continue
            except ValueError as e:  # a 4xx other than 408/409/425/429: the request itself is wrong
                self.stats.add(error=str(e).split(":", 1)[0].replace("HTTP ", ""))
                error = str(e)
                break
            for i, g in enumerate(gens):
                g.attempts, g.requests, g.endpoint = attempt + 1, attempt + 1 if i == 0 else 0, base
                g.seconds = time.monotonic() - t0
            return gens
        else:
            error = f"{error} (after {sp.max_retries + 1} attempts)"
        return [
            Generation(
                u.key,
                error=error,
                attempts=attempt + 1,
                requests=attempt + 1 if i == 0 else 0,
                seconds=time.monotonic() - t0,
            )
            for i, u in enumerate(units)
        ]

    def close(self) -> None:
        pass


class HFGenerator:
    """A local Hugging Face causal LM (a folder; GPU when present). The chat template of the tokenizer is
    used when it has one, else the messages are joined as plain text."""

    def __init__(self, spec: GeneratorSpec):
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:  # the spec checks this too; a Ray worker may lack what the driver has
            raise ImportError(f"generator kind hf needs torch and transformers ({exc})") from exc
        self.torch, self.spec = torch, spec
        self.concurrency, self.batch_size = 1, spec.batch_size
        self.stats = TransportStats()
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if spec.device == "auto" else spec.device
        self.tokenizer = AutoTokenizer.from_pretrained(spec.model, local_files_only=True)
        self.tokenizer.padding_side = "left"  # new tokens follow each prompt's last token
        self.tokenizer.truncation_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(spec.model, local_files_only=True, torch_dtype=dtype)
        self.model.to(self.device).eval()
        limit = (
            getattr(self.model.config, "max_position_embeddings", None)
            or getattr(self.model.config, "n_positions", None)
            or 4096
        )
        self.max_prompt = max(16, limit - spec.max_tokens)
        self.eos = self.tokenizer.eos_token_id

    def _prompt(self, messages: list[dict[str, str]]) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return render_plain(messages)

    def generate(self, units: list[Unit]) -> list[Generation]:
        torch, sp = self.torch, self.spec
        t0 = time.monotonic()
        self.stats.add(requests=1)
        try:
            enc = self.tokenizer(
                [self._prompt(u.messages) for u in units],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.max_prompt,
            ).to(self.device)
            if sp.seed is not None:
                torch.manual_seed(sp.seed)
            sample = sp.temperature > 0
            with torch.no_grad():
                out = self.model.generate(
                    **enc,
                    max_new_tokens=sp.max_tokens,
                    do_sample=sample,
                    temperature=sp.temperature if sample else None,
                    top_p=sp.top_p if sample else None,
                    pad_token_id=self.tokenizer.pad_token_id,
                    eos_token_id=self.eos,
                )
        except Exception as e:  # out of memory, a bad model: every unit of the batch fails with the reason
            self.stats.add(error=type(e).__name__)
            return [
                Generation(
                    u.key,
                    error=f"{type(e).__name__}: {str(e)[:300]}",
                    attempts=1,
                    requests=1 if i == 0 else 0,
                    seconds=time.monotonic() - t0,
                )
                for i, u in enumerate(units)
            ]
        new = out[:, enc["input_ids"].shape[1] :].tolist()
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
        gens = []
        for i, (u, ids) in enumerate(zip(units, new)):
            stopped = self.eos is not None and self.eos in ids
            if stopped:
                ids = ids[: ids.index(self.eos)]
            ids = [t for t in ids if t != self.tokenizer.pad_token_id]
            gens.append(
                Generation(
                    u.key,
                    text=self.tokenizer.decode(ids, skip_special_tokens=True),
                    finish_reason="stop" if stopped else "length",
                    prompt_tokens=int(prompt_lens[i]),
                    completion_tokens=len(ids),
                    attempts=1,
                    requests=1 if i == 0 else 0,
                    seconds=time.monotonic() - t0,
                    endpoint=f"local:{self.device}",
                )
            )
        return gens

    def close(self) -> None:
        pass


class PooledGenerator:
    """A local model held by the executor's workers (one per GPU of a Ray cluster): the job's threads call
    `generate`, each call runs on an idle worker, and a worker that dies fails only its own batch."""

    name = "pooled"

    def __init__(self, pool: Any, batch_size: int):
        self.pool = pool
        self.concurrency, self.batch_size = pool.size, batch_size
        self.stats = TransportStats()

    def generate(self, units: list[Unit]) -> list[Generation]:
        from curation.executor import WorkerLost

        try:
            gens = self.pool.call("generate", units)
        except WorkerLost as e:
            self.stats.add(requests=1, error="worker")
            return [Generation(u.key, error=f"model worker failed: {e}", attempts=1) for u in units]
        self.stats.add(requests=1, error=next((g.error.split(":", 1)[0] for g in gens if g.error), None))
        return gens

    def close(self) -> None:
        self.pool.close()


def build_generator(spec: GeneratorSpec, executor: Any = None):
    """The generator the job's threads call: HTTP, a local model in this process, or (engine ray with a
    local model) the model in the executor's workers: one per GPU of the cluster (or `workers`), CPU
    workers when there is no GPU."""
    if spec.kind == "openai":
        return OpenAIGenerator(spec)
    if executor is not None and executor.name == "ray":
        on_gpu = executor.gpus > 0 and spec.device != "cpu"
        n = spec.workers or max(1, executor.gpus if on_gpu else 1)
        pool = executor.worker_pool(HFGenerator, (spec,), n, gpus_each=1 if on_gpu else 0, cpus_each=0 if on_gpu else 1)
        return PooledGenerator(pool, spec.batch_size)
    return HFGenerator(spec)
