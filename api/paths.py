"""What a submitted job may touch: its paths against the roots and other users' outputs, its generator URLs
and key names against the operator's lists.

The path rules themselves live in `curation.io.policy`, shared with the job, which applies the same policy
again after glob expansion and wherever it opens a file.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from curation.io.policy import PathPolicy, declared_reads

# Cloud metadata services by name (the link-local and well-known addresses are refused by address).
_METADATA_HOSTS = {
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.azure.com",
    "metadata.tencentyun.com",
}
_METADATA_ADDRESSES = {
    ipaddress.ip_address(a) for a in ("100.100.100.200", "fd00:ec2::254", "169.254.169.254", "169.254.170.2")
}


def check_paths(job, policy: PathPolicy) -> list[tuple[str, str]]:
    """(key path, message) for every declared read and for the output that `policy` refuses."""
    errors = [(key, why) for key, p in declared_reads(job) if (why := policy.problem(p)) is not None]
    if (why := policy.problem(job.output, deny=False)) is not None:  # overlaps: a 409 from the job store
        errors.append(("output", why))
    return errors


def _metadata_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host in _METADATA_HOSTS:
        return True
    try:
        addr = ipaddress.ip_address(int(host) if host.isdigit() else host)  # 2852039166 is 169.254.169.254
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_link_local or addr in _METADATA_ADDRESSES


def _url_allowed(url: str, prefix: str) -> bool:
    """`url` is under `prefix` compared by parts (scheme, host, port, path segments), so neither
    `http://ok:80@evil/` nor `http://ok.evil/` passes for the prefix `http://ok`."""
    u, p = urlsplit(url), urlsplit(prefix)
    if u.username is not None or u.password is not None:
        return False
    if (u.scheme.lower(), (u.hostname or "").lower(), u.port) != (p.scheme.lower(), (p.hostname or "").lower(), p.port):
        return False
    base = p.path.rstrip("/")
    return u.path.rstrip("/") == base or u.path.startswith(base + "/")


def check_generator(job, url_prefixes: list[str], key_envs: list[str]) -> list[tuple[str, str]]:
    """(key path, message) for a synthesis generator the operator did not allow: URLs outside the listed
    prefixes (none by default), metadata and link-local hosts (never), `api_key_env` names not listed."""
    if getattr(job, "kind", None) != "synthesize":
        return []
    gen, errors = job.generator, []
    if gen.kind == "openai":
        urls = [gen.base_url] if isinstance(gen.base_url, str) else list(gen.base_url or [])
        key = "generator.base_url" if isinstance(gen.base_url, str) else None
        for i, url in enumerate(urls):
            where = key or f"generator.base_url.{i}"
            host = urlsplit(url).hostname or ""
            if _metadata_host(host):
                errors.append((where, f"{host} is a link-local or cloud metadata address, never allowed"))
            elif not any(_url_allowed(url, p) for p in url_prefixes):
                allowed = ", ".join(url_prefixes) if url_prefixes else "none (curate serve --generator-url PREFIX)"
                errors.append((where, f"{url} is not under a generator URL the service allows ({allowed})"))
    if gen.api_key_env is not None and gen.api_key_env not in key_envs:
        allowed = ", ".join(key_envs) if key_envs else "none (curate serve --generator-key-env NAME)"
        errors.append(
            (
                "generator.api_key_env",
                f"{gen.api_key_env} is not an environment variable the service lets jobs use ({allowed})",
            )
        )
    return errors
