"""WARC and WET files in: one row per HTTP response (WARC) or text conversion (WET) record.

Parsed with FastWARC (the Chatnoir/Resiliparse project's parser, 10x warcio's speed), streaming and
record by record; gzip per record is handled by FastWARC. Other record types (requests, metadata, warcinfo)
are not documents and are not counted as records. The HTML is decoded with the charset the HTTP header
declares, else the one Resiliparse detects (meta tags, byte statistics); the `extract` stage turns it into
text. Each row carries `url`, `warc_date`, `content_type`, `http_status`, `warc_digest` (to the outputs).
A record whose body cannot be decoded is quarantined; a file that breaks part way ends with one quarantine
row, as for the other formats.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Iterator

import pyarrow as pa

if TYPE_CHECKING:
    from curation.io.batches import BatchBuilder, ReadLimits
    from curation.io.files import InputFile

WARC_COLUMNS = pa.schema(
    [
        ("url", pa.string()),
        ("warc_date", pa.string()),
        ("content_type", pa.string()),
        ("http_status", pa.int32()),
        ("warc_digest", pa.string()),
    ]
)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)


def decode_body(body: bytes, content_type: str | None) -> tuple[str, str]:
    """(text, encoding used): the declared charset when Python knows it, else Resiliparse's detection."""
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    declared = _CHARSET.search(content_type or "")
    if declared:
        try:
            return body.decode(declared.group(1)), declared.group(1).lower()
        except (LookupError, UnicodeDecodeError):
            pass
    enc = detect_encoding(body) or "utf-8"
    return bytes_to_str(body, enc), enc


def read_warc(f: "InputFile", b: "BatchBuilder", limits: "ReadLimits") -> Iterator[pa.Table]:
    try:
        from fastwarc.warc import ArchiveIterator, WarcRecordType
    except ImportError as exc:  # the spec check names the extra; this covers a direct reader call
        raise ImportError("format warc needs FastWARC and Resiliparse: pip install 'corpus-curation[warc]'") from exc
    from curation.io.files import filesystem_for

    b.with_extra(WARC_COLUMNS)
    fs, path = filesystem_for(f.uri)
    with fs.open_input_file(path) as stream:  # FastWARC asks the stream for its position: a seekable file
        kinds = WarcRecordType.response | WarcRecordType.conversion
        for position, record in enumerate(ArchiveIterator(stream, record_types=kinds, parse_http=True), start=1):
            h = record.headers
            meta: dict[str, Any] = {
                "url": h.get("WARC-Target-URI"),
                "warc_date": h.get("WARC-Date"),
                "warc_digest": h.get("WARC-Payload-Digest") or h.get("WARC-Block-Digest"),
            }
            rec_id = (h.get("WARC-Record-ID") or "").strip("<>") or None
            if record.record_type == WarcRecordType.conversion:  # WET: the text is already extracted
                meta["content_type"], meta["http_status"] = "text/plain", None
                declared = h.get("Content-Type")
            else:
                http = record.http_headers
                meta["http_status"] = http.status_code if http is not None else None
                meta["content_type"] = http.get("Content-Type") if http is not None else None
                declared = meta["content_type"]
            body = record.reader.read(limits.max_doc_bytes + 1)
            # FastWARC hands back a cut record (the file ends inside it) with what it could read: headers
            # without Content-Length, or a body shorter than the length they declare.
            if "Content-Length" not in h or len(body) < min(record.content_length, limits.max_doc_bytes + 1):
                b.add(position, rec_id, None, "truncated WARC record: the file ends inside it", body, extra=meta)
            elif record.record_type == WarcRecordType.response and record.http_headers is None:
                b.add(
                    position, rec_id, None, "malformed WARC response: no HTTP status line and headers", body, extra=meta
                )
            elif len(body) > limits.max_doc_bytes:
                b.add(
                    position,
                    rec_id,
                    None,
                    f"record body is over max_doc_bytes ({limits.max_doc_bytes:,})",
                    body,
                    extra=meta,
                )
            else:
                try:
                    text, _ = decode_body(body, declared)
                except Exception as e:  # an undecodable body is this record's problem, not the file's
                    b.add(position, rec_id, None, f"cannot decode the body: {type(e).__name__}: {e}", body, extra=meta)
                else:
                    b.add(position, rec_id, text, extra=meta)
            if b.full():
                yield b.flush()
