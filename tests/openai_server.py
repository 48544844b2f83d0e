"""A small OpenAI-compatible HTTP server for the synthesis tests: /v1/chat/completions and /v1/completions
on loopback, answered by a deterministic rewriter instead of a model.

What it answers depends on the document in the prompt (the text after the last "Text:\n"), so a test can
tell in advance what must happen to each document (`behaviour`):

  ok          the rewrite: each sentence's words in reverse order (same language, same length, no long
              n-gram in common with the source)
  copy        the source itself                                   -> synth:copy
  leak        the rewrite followed by the prompt's instructions   -> synth:prompt_leak
  truncated   the rewrite, finish_reason "length"                 -> synth:truncated
  german      a German paragraph                                  -> synth:language_mismatch
  loop        one sentence twenty times                           -> gopher_repetition:...
  short       "Done."                                             -> synth:too_short
  http400     400 on every attempt                                -> failed, HTTP 400
  http500     500 on every attempt                                -> failed after the retries
  flaky429    429 with Retry-After on the first attempt, then ok  -> kept
  flaky500    500 on the first attempt, then ok                   -> kept
  slow        the first attempt answers after `slow_s` seconds (past the client's timeout), then ok -> kept

Every 200 response is logged per prompt (`served`), with the `phase` the test sets, so a test can prove
that no prompt was generated twice.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import regex

BEHAVIOURS = ["ok"] * 9 + [
    "copy",
    "leak",
    "truncated",
    "german",
    "loop",
    "short",
    "http400",
    "http500",
    "flaky429",
    "flaky500",
    "slow",
]
KEPT = {"ok", "flaky429", "flaky500", "slow"}
EXPECTED_REASON = {
    "copy": "synth:copy",
    "leak": "synth:prompt_leak",
    "truncated": "synth:truncated",
    "german": "synth:language_mismatch",
    "loop": "gopher_repetition",
    "short": "synth:too_short",
}
FAILED = {"http400": "HTTP 400", "http500": "HTTP 500"}
GERMAN = (
    "Alle Menschen sind frei und gleich an Würde und Rechten geboren. Sie sind mit Vernunft und Gewissen "
    "begabt und sollen einander im Geist der Brüderlichkeit begegnen. Jeder hat Anspruch auf die in dieser "
    "Erklärung verkündeten Rechte und Freiheiten ohne irgendeinen Unterschied, etwa nach Rasse, Hautfarbe, "
    "Geschlecht, Sprache, Religion, politischer oder sonstiger Anschauung, nationaler oder sozialer "
    "Herkunft, Vermögen, Geburt oder sonstigem Stand."
)
_SENTENCE = regex.compile(r"(?<=[.!?])\s+")


def document_of(prompt: str) -> str:
    return prompt.rsplit("Text:\n", 1)[-1].strip()


def behaviour(document: str) -> str:
    return BEHAVIOURS[int(hashlib.sha256(document.encode()).hexdigest(), 16) % len(BEHAVIOURS)]


def prompt_key(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()


def rewrite(document: str) -> str:
    out = []
    for s in _SENTENCE.split(" ".join(document.split())):
        end = s[-1] if s and s[-1] in ".!?" else ""
        out.append(" ".join(reversed((s[:-1] if end else s).split())) + end)
    return " ".join(out)


class Backend:
    def __init__(self, slow_s: float = 2.0, faults: bool = True):
        self.slow_s, self.faults = slow_s, faults
        self.lock = threading.Lock()
        self.attempts: Counter = Counter()  # prompt hash -> requests seen
        self.served: dict[str, list[int]] = defaultdict(list)  # prompt hash -> phases of 200 answers
        self.statuses: Counter = Counter()
        self.phase = 1
        self.requests = 0

    def answer(self, prompt: str) -> tuple[int, dict, str | None, str]:
        """(status, headers, text, finish_reason) for one prompt (logged as served by the handler)."""
        doc = document_of(prompt)
        kind = behaviour(doc) if self.faults else "ok"
        key = prompt_key(prompt)
        with self.lock:
            self.attempts[key] += 1
            attempt = self.attempts[key]
        if kind == "http400":
            return 400, {}, None, ""
        if kind == "http500" or (kind == "flaky500" and attempt == 1):
            return 500, {}, None, ""
        if kind == "flaky429" and attempt == 1:
            return 429, {"Retry-After": "0.2"}, None, ""
        if kind == "slow" and attempt == 1:
            time.sleep(self.slow_s)
        text = {
            "copy": doc,
            "leak": rewrite(doc) + "\n\n" + prompt.rsplit("Text:\n", 1)[0],
            "german": GERMAN,
            "short": "Done.",
            "loop": " ".join(["The company said it would pay a dividend."] * 20),
        }.get(kind, rewrite(doc))
        return 200, {}, text, "length" if kind == "truncated" else "stop"


def _handler(backend: Backend):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(n) or b"{}")
            with backend.lock:
                backend.requests += 1
                phase = backend.phase  # when the request came, not when its (maybe slow) answer went
            chat = self.path.endswith("/chat/completions")
            if not chat and not self.path.endswith("/completions"):
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            if chat:
                prompts = ["\n\n".join(m["content"] for m in body["messages"])]
            else:
                prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
            answers = [backend.answer(p) for p in prompts]
            worst = max(answers, key=lambda a: a[0])
            with backend.lock:
                backend.statuses[worst[0]] += 1
                if worst[0] == 200:  # generated and sent: what a paying client is billed for
                    for p in prompts:
                        backend.served[prompt_key(p)].append(phase)
            if worst[0] != 200:
                return self._send(worst[0], {"error": {"message": f"simulated {worst[0]}"}}, worst[1])
            choices = []
            completion_tokens = 0
            for i, (_, _, text, finish) in enumerate(answers):
                completion_tokens += len(text.split())
                choices.append(
                    {
                        "index": i,
                        "finish_reason": finish,
                        **({"message": {"role": "assistant", "content": text}} if chat else {"text": text}),
                    }
                )
            self._send(
                200,
                {
                    "id": "cmpl-test",
                    "object": "chat.completion" if chat else "text_completion",
                    "model": body.get("model"),
                    "choices": choices,
                    "usage": {
                        "prompt_tokens": sum(len(p.split()) for p in prompts),
                        "completion_tokens": completion_tokens,
                        "total_tokens": sum(len(p.split()) for p in prompts) + completion_tokens,
                    },
                },
            )

    return Handler


class OpenAITestServer:
    """The server on 127.0.0.1 (an ephemeral port) in a thread of the test process."""

    def __init__(self, slow_s: float = 2.0, faults: bool = True, port: int = 0):
        self.backend = Backend(slow_s, faults)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self.backend))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> "OpenAITestServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":  # a server of its own process (bench/synthesize.py): prints its URL, serves until killed
    import sys

    with OpenAITestServer(faults="--no-faults" not in sys.argv) as srv:
        print(srv.url, flush=True)
        srv.thread.join()
