"""`archive extract ID`: take evidence out of a capture for use elsewhere: one captured
resource, decoded, with its record's digests (`--url URL [--out FILE]`), the
capture's RFC 3161 tokens (`--timestamps DIR`), or its signature as files openssl
checks (`--signature DIR`). Taking evidence out of a store is a custody event, recorded
in its ledger."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path

from archive.cli.common import add_store_arguments, print_json
from archive.cli.custody import add_actor_options, actor_from_args
from archive.cli.store import store_options
from archive.custody.entry import EXPORTED
from archive.custody.log import CustodyLog
from archive.errors import ArchiveError
from archive.ids import is_capture_id
from archive.store.address import open_existing_store
from archive.signature_files import export_signature
from archive.timestamping import export_tokens, read_sealed_digest, sealed_digest
from archive.reader.extract import AlteredRecord, Extracted, Opener, extract, media_items, store_opener
from archive.reader.source import resolve, store_source


def register(sub) -> None:
    p = sub.add_parser("extract", help="write evidence out of a capture (a resource, or its timestamps)")
    p.add_argument("capture_id", metavar="ID", help="a capture id (in --store) or a WACZ file")
    p.add_argument("--url", help="the captured URL whose content (decoded) to write")
    p.add_argument("--out", metavar="FILE", help="with --url: write here (never overwrites); default stdout")
    p.add_argument("--raw", action="store_true",
                   help="with --url: the payload as transferred (chunk framing, content encoding kept)")
    p.add_argument("--media", nargs="?", const=0, type=int, metavar="N",
                   help="list the capture's video and audio; with N and --out, write item N out")
    p.add_argument("--timestamps", metavar="DIR", type=Path,
                   help="write its RFC 3161 tokens (.tsr), their certificates and datapackage.json")
    p.add_argument("--signature", metavar="DIR", type=Path,
                   help="write the bytes it signed, the signer's public key (PEM) and the signature "
                        "(DER), for `openssl dgst -sha256 -verify`")
    add_store_arguments(p)
    add_actor_options(p, "sign the custody entry with this private key (default: $ARCHIVE_KEY)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def run(args) -> int:
    for flag, given in (("--timestamps", args.timestamps), ("--signature", args.signature)):
        if given is None:
            continue
        mixed = [other for other, value in (("--url", args.url), ("--out", args.out), ("--raw", args.raw),
                                            ("--timestamps", args.timestamps), ("--signature", args.signature))
                 if value and other != flag]
        if mixed:
            raise ArchiveError(f"{flag} cannot be combined with {', '.join(mixed)}: "
                               "extract the tokens, the signature or a URL's content, one at a time")
        return run_timestamps(args) if flag == "--timestamps" else run_signature(args)
    if args.media is not None:
        if args.url:
            raise ArchiveError("--media and --url cannot be combined: --media N names the item")
        if args.media == 0:
            if args.out or args.raw:
                raise ArchiveError("--out goes with --media N: say which item to write")
            return run_media_list(args)
        args.url = _media_record(args)
        return run_resource(args)
    if args.url:
        return run_resource(args)
    if args.out or args.raw:
        raise ArchiveError("--out and --raw go with --url URL: say which content to write")
    raise ArchiveError("say what to extract: --url URL, --timestamps DIR or --signature DIR")


def run_signature(args) -> int:
    """--signature DIR, and the openssl command that checks it."""
    source = resolve(args.capture_id, args.store, args.endpoint_url)
    name = args.capture_id if is_capture_id(args.capture_id) else Path(source.name).name.removesuffix(".wacz")
    with source.open() as fh:
        sealed = sealed_digest(fh, args.capture_id)
    files = export_signature(sealed, name, args.signature)
    written = [files.signed, files.public_key, files.signature, files.datapackage]
    problems = _record_export(args, {"what": "signature", "to": str(args.signature),
                                     "files": [f.name for f in written]})
    if args.json:
        print_json({"files": [str(f) for f in written], "fingerprint": files.fingerprint,
                    "curve": files.curve, "encoding": files.encoding, "command": files.openssl_command()})
    else:
        print(f"wrote {files.signed} (the exact bytes signed: the SHA-256 of {files.datapackage.name})")
        print(f"wrote {files.public_key} (the key in the capture: ECDSA {files.curve}, "
              f"fingerprint {files.fingerprint})")
        print(f"wrote {files.signature} (the signature, DER)")
        print(f"wrote {files.datapackage}")
        print(f"check: {files.openssl_command()}")
        print("then:  compare that key's fingerprint with the signer's published key "
              "(`archive keys show KEY.pub.pem`): a key found in a file proves nothing by itself")
    if problems:
        raise ArchiveError("; ".join(problems))
    return 0


def _source(args):
    return resolve(args.capture_id, args.store, args.endpoint_url)


def _media(args) -> list[dict]:
    return media_items(_source(args))


def _media_record(args) -> str:
    """The record of item --media N (what run_resource then writes out)."""
    items = _media(args)
    item = next((i for i in items if i["item"] == args.media), None)
    if item is None:
        raise ArchiveError(f"no media item {args.media}: the capture lists {len(items)} "
                           "(`archive extract ID --media` lists them)")
    if item.get("status") != "kept" or not item.get("record"):
        raise ArchiveError(f"media item {args.media} was not captured ({item.get('status')}: "
                           f"{item.get('reason', 'no reason given')})")
    return item["record"]


def run_media_list(args) -> int:
    """--media: what became of each video and audio item, and how to write one out."""
    items = _media(args)
    if args.json:
        print_json({"media": items})
        return 0
    if not items:
        print("no media listed in this capture (captured without --media?)")
        return 0
    for item in items:
        print(f"{item['item']:>3}  {item.get('status', '?'):<8} {item.get('url', '')}")
        print(f"     page      {item.get('page', '')}")
        if item.get("status") != "kept":
            print(f"     why       {item.get('reason', 'no reason given')}")
            continue
        duration = item.get("duration")
        print(f"     format    {item.get('format', '?')}"
              + (f", {duration:g} s" if isinstance(duration, (int, float)) else "")
              + f", {item.get('size', '?')} bytes")
        print(f"     sha256    {item.get('sha256', '?')}")
        print(f"     record    {item.get('record')}")
        if item.get("stored"):
            print(f"     stored    {item['stored']}: the response of {item.get('storedIn', '?')}, "
                  "whose payload is the file")
    print(f"write one out: archive extract {args.capture_id} --media N --out FILE "
          "(the file's digest is checked as it is read; `archive verify` checks the list)")
    return 0


def _record_export(args, details: dict) -> list[str]:
    """A custody entry when the capture came out of a store; the problems it met."""
    if not is_capture_id(args.capture_id) or os.path.exists(args.capture_id):
        return []
    store = open_existing_store(args.store, store_options(args))
    custody = CustodyLog(store, actor_from_args(args, key_from_env=True))
    custody.record(EXPORTED, args.capture_id, read_sealed_digest(store, args.capture_id).wacz_sha256,
                   **details)
    return custody.problems


def run_timestamps(args) -> int:
    """--timestamps DIR, and how to check each token with openssl."""
    actor = actor_from_args(args, key_from_env=True)
    store = open_existing_store(args.store, store_options(args))
    files = export_tokens(store, args.capture_id, args.timestamps)
    custody = CustodyLog(store, actor)
    custody.record(EXPORTED, args.capture_id, read_sealed_digest(store, args.capture_id).wacz_sha256,
                   what="timestamps", to=str(args.timestamps), files=[f.name for f in files])
    if args.json:
        print_json({"files": [str(f) for f in files]})
    else:
        data = files[0]
        for token in (f for f in files if f.suffix == ".tsr"):
            certs = token.with_name(token.name.removesuffix(".tsr") + ".certs.pem")
            print(f"wrote {token}" + (f" and {certs.name}" if certs in files else ""))
        print(f"wrote {data} (the data the tokens are over)")
        print(f"check: openssl ts -verify -data {data} -in TOKEN.tsr -CAfile TSA-ROOT-CA.pem")
    if custody.problems:
        raise ArchiveError("; ".join(custody.problems))
    return 0


def _decoding(undone: list[str] | None) -> str:
    if undone is None:
        return "no: the payload as transferred (--raw)"
    return ("undid " + ", then ".join(undone)) if undone else "nothing to undo (not chunked, not encoded)"


def _describe(result: Extracted, out: str | None) -> str:
    verdict = {True: "digests hold", False: "DIGESTS DO NOT MATCH", None: "no digest to check"}
    lines = [
        f"url             {result.url}",
        f"record          {result.record_id} ({result.record_type}, {result.date})",
        f"in              {result.warc_file} at byte offset {result.offset}",
        f"content type    {result.content_type}" + (f", HTTP {result.http_status}" if result.http_status else ""),
        f"block digest    {result.block_digest}",
        f"payload digest  {result.payload_digest}",
        f"check           {verdict[result.digests_ok]}" + "".join(f"; {p}" for p in result.digest_problems),
        f"decoded         {_decoding(result.decoded)}",
        f"written         {result.bytes_written} bytes, sha256 {result.sha256}"
        + (f" to {out}" if out else ""),
    ]
    if result.revisit_of:
        why = ("the payload was unchanged since then" if result.url.startswith(("http:", "https:"))
               else "the file is that response's payload, byte for byte")
        lines.insert(3, f"content from    {result.revisit_of} (this record is a revisit: {why})")
    if result.truncated:
        lines.append(f"TRUNCATED       the capture of this resource was cut short (WARC-Truncated: "
                     f"{result.truncated}): what was written is incomplete")
    if result.loose_headers:
        lines.append("WARNING         the HTTP headers of this record do not end with CRLF CRLF: what "
                     "was written starts where warcio and pywb start the body, browsers (at the first "
                     "empty line) or ReplayWeb.page (at the first CRLF CRLF) show it from another byte")
    if result.captures_of_url > 1:
        lines.append(f"note            {result.captures_of_url} captures of this URL; this is the latest")
    lines.append("note            run `archive verify` to check the whole capture and its signature")
    return "\n".join(lines)


STDOUT_IN_MEMORY = 8 << 20     # a larger payload for stdout waits on disk until checked


class _Output:
    """Where the payload goes: a new file (never an existing one, nor through a symlink),
    removed when the extraction fails, or stdout, which gets it only once it was read to
    its end and checked (a script piping it on never sees part of a refused payload).
    Its write errors (a full disk) are said as such; a closed pipe is left to the
    command's handling (exit 141)."""

    def __init__(self, path: str | None) -> None:
        self.path, self.name = path, path or "stdout"
        try:
            # stdout's copy waits in a temporary file (in memory while small)
            self.stream = open(path, "xb") if path else tempfile.SpooledTemporaryFile(STDOUT_IN_MEMORY)
        except FileExistsError:
            raise ArchiveError(f"{path} already exists; not overwriting it") from None
        except OSError as exc:
            raise ArchiveError(f"{path}: {exc.strerror}") from None

    def _writing(self, action, *data):
        try:
            return action(*data)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise ArchiveError(f"cannot write {self.name}: {exc.strerror or exc}") from None

    def write(self, data: bytes) -> int:
        return self._writing(self.stream.write, data)

    def finish(self) -> None:
        """Everything written out (a full disk may only show here)."""
        if self.path:
            self._writing(self.stream.close)
            return
        self.stream.seek(0)
        self._writing(shutil.copyfileobj, self.stream, sys.stdout.buffer, 1 << 20)
        self.stream.close()
        self._writing(sys.stdout.buffer.flush)

    def discard(self) -> None:
        try:
            self.stream.close()
        except OSError:
            pass                 # what it could not write is removed with it
        if self.path:
            os.unlink(self.path)


def _earlier_captures(args, stack: ExitStack) -> Opener | None:
    """Where a revisit's original is looked for when this capture does not hold it: the
    captures it was deduplicated against, in its store (or --store)."""
    if not (args.store or (is_capture_id(args.capture_id) and not os.path.exists(args.capture_id))):
        return None
    return store_opener(stack, lambda capture_id: store_source(args.store, capture_id, args.endpoint_url))


def run_resource(args) -> int:
    """--url URL [--out FILE]: the payload on stdout or in FILE, the digests beside it."""
    source = _source(args)
    out = _Output(args.out)
    try:
        with ExitStack() as stack:
            result = extract(source, args.url, out, raw=args.raw, elsewhere=_earlier_captures(args, stack))
        out.finish()
    except BaseException as exc:
        out.discard()
        if isinstance(exc, ArchiveError) and not args.out:
            exc.args = (f"{exc} (nothing was written to stdout)",)
        if not isinstance(exc, AlteredRecord):
            raise
        print(f"archive: error: {exc}", file=sys.stderr)
        return 1                         # it does not verify
    problems = _record_export(args, {"what": "resource", "url": args.url, "sha256": result.sha256,
                                     "to": args.out or "stdout"})
    info = sys.stdout if args.out else sys.stderr    # the payload owns stdout without --out
    print(json.dumps(asdict(result), indent=2) if args.json else _describe(result, args.out), file=info)
    if problems:
        raise ArchiveError("; ".join(problems))
    return 1 if result.digests_ok is False else 0
