"""`archive extract ID --url URL [--out FILE]`: the captured resource itself, decoded,
with its record's digests."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict

from archive.errors import ArchiveError
from archive.verify.extract import extract
from archive.verify.model import CannotCheck
from archive.verify.source import resolve


def register(sub) -> None:
    p = sub.add_parser("extract", help="write one captured resource (decoded) and its digests")
    p.add_argument("target", metavar="ID", help="a capture id (in --store) or a WACZ file")
    p.add_argument("--url", required=True, help="the captured URL")
    p.add_argument("--out", metavar="FILE", help="write here (never overwrites); default: stdout")
    p.add_argument("--store", help="store holding the capture id (default: ./archive-store)")
    p.add_argument("--json", action="store_true", help="the record's details as JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    try:
        source = resolve(args.target, args.store)
    except CannotCheck as exc:
        raise ArchiveError(str(exc)) from None
    if args.out:
        try:
            out = open(args.out, "xb")
        except FileExistsError:
            raise ArchiveError(f"{args.out} already exists; not overwriting it") from None
        except OSError as exc:
            raise ArchiveError(f"{args.out}: {exc.strerror}") from None
    else:
        out = sys.stdout.buffer
    try:
        result = extract(source, args.url, out)
    except BaseException:
        if args.out:
            out.close()
            os.unlink(args.out)
        raise
    if args.out:
        out.close()
    else:
        out.flush()
    info = sys.stdout if args.out else sys.stderr    # the payload owns stdout when there is no --out
    if args.json:
        print(json.dumps(asdict(result), indent=2), file=info)
    else:
        verdict = {True: "digests hold", False: "DIGESTS DO NOT MATCH", None: "no digest to check"}
        lines = [
            f"url             {result.url}",
            f"record          {result.record_id} ({result.record_type}, {result.date})",
            f"in              {result.warc_file} at byte offset {result.offset}",
            f"content type    {result.content_type}" + (f", HTTP {result.http_status}" if result.http_status else ""),
            f"block digest    {result.block_digest}",
            f"payload digest  {result.payload_digest}",
            f"check           {verdict[result.digests_ok]}" + "".join(f"; {p}" for p in result.digest_problems),
            f"written         {result.bytes_written} bytes (decoded), sha256 {result.sha256}"
            + (f" to {args.out}" if args.out else ""),
        ]
        if result.captures_of_url > 1:
            lines.append(f"note            {result.captures_of_url} captures of this URL; this is the latest")
        lines.append("note            run `archive verify` to check the whole capture and its signature")
        print("\n".join(lines), file=info)
    return 1 if result.digests_ok is False else 0
