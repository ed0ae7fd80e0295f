"""Checks of the zip and the files it holds: the container itself, every file against
datapackage.json (size and hash), and the pages list."""

from __future__ import annotations

import json

from archive.values import count
from archive.verify.model import FAIL, PASS, WARN, Report
from archive.reader.problems import Problem
from archive.wacz.names import DATAPACKAGE, DIGEST_FILES, PAGES
from archive.wacz.zipreader import Container

WEAK_HASHES = {"md5": "MD5", "sha1": "SHA-1"}


def container_check(report: Report, container: Container, ours: bool, target: str) -> None:
    count = len(container.members)
    if container.canonical:
        report.add("container", PASS, f"canonical zip, {count} entries, every header byte checked")
    elif ours:
        report.add("container", FAIL, "the zip container was altered: " + container.problems[0],
                   [Problem(container.problems[0], target)])
    else:
        report.add("container", WARN, "written by another tool: contents checked, zip headers "
                   "not checked byte for byte")
        report.notes.append("the zip container is not in our canonical form (another tool wrote "
                            "it), so its headers were read leniently; every file inside was checked")


def _declared(resource: dict) -> tuple[str | None, int | None]:
    """(hash, bytes) of a resource; WACZ 1.0.0 kept them under `stats`."""
    stats = resource.get("stats") if isinstance(resource.get("stats"), dict) else {}
    return resource.get("hash") or stats.get("hash"), resource.get("bytes", stats.get("bytes"))


def resources_listed(datapackage: dict) -> tuple[dict[str, dict], list[Problem]]:
    problems, by_path = [], {}
    resources = datapackage.get("resources")
    if not isinstance(resources, list):
        return {}, [Problem("datapackage.json has no resources list", DATAPACKAGE)]
    for item in resources:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            problems.append(Problem(f"resource entry without a path: {str(item)[:80]}", DATAPACKAGE))
            continue
        if item["path"] in by_path:
            problems.append(Problem(f"{item['path']} is listed twice", DATAPACKAGE))
        by_path[item["path"]] = item
    return by_path, problems


def hash_algorithm(resource: dict) -> tuple[str, str | None]:
    """(algorithm, expected hex) of a resource: `algo:hex`, or WACZ 1.0.0's bare hex
    with the algorithm in `hashing`."""
    declared_hash = _declared(resource)[0]
    if not isinstance(declared_hash, str):
        return "sha256", None
    if ":" in declared_hash:
        algorithm, _, value = declared_hash.partition(":")
    else:
        algorithm, value = str(resource.get("hashing") or "sha256"), declared_hash
    return algorithm.lower().replace("-", ""), value.lower()


def resources_check(report: Report, container: Container, datapackage: dict,
                     dp_error: str | None, members: dict) -> None:
    resources, problems = resources_listed(datapackage)
    if dp_error:
        problems.insert(0, Problem(dp_error, DATAPACKAGE))
    names = {m.name for m in container.members}
    for name, digest in members.items():
        if digest.error:      # a CRC-32 mismatch or an unreadable member, the manifests included
            problems.append(Problem(digest.error, name))
            continue
        if name in DIGEST_FILES:
            continue
        resource = resources.get(name)
        if resource is None:
            problems.append(Problem(f"{name} is in the zip but not listed in datapackage.json", name))
            continue
        declared_size = _declared(resource)[1]
        if declared_size is not None and declared_size != digest.size:
            said = declared_size if isinstance(declared_size, int) and not isinstance(declared_size, bool) \
                else f"{json.dumps(declared_size)} (not a whole number)"
            problems.append(Problem(f"{name} is {digest.size} bytes, datapackage.json says {said}", name))
        algorithm, expected = hash_algorithm(resource)
        if expected is None or digest.digests.get(algorithm) != expected:
            problems.append(Problem(f"{name} does not match its hash in datapackage.json", name))
    for path in resources:
        if path not in names:
            problems.append(Problem(f"{path} is listed in datapackage.json but missing from the zip", path))
    summary = f"{count(len(resources), 'file')} listed in datapackage.json: size and hash "
    weak = sorted({WEAK_HASHES[a] for a in (hash_algorithm(r)[0] for r in resources.values()) if a in WEAK_HASHES})
    if problems or not weak:
        report.add("resources", FAIL if problems else PASS,
                   summary + ("do not all match" if problems else "match"), problems)
        return
    # the signature covers these hashes, and a hash that collisions defeat ties it to
    # nothing a forger could not swap (a WACZ tool may be asked for MD5: py-wacz --hash-type)
    names = " and ".join(weak)
    report.add("resources", WARN, summary + f"match, but they are {names}", [Problem(
        f"datapackage.json hashes files with {names}, for which colliding files can be made: "
        "a match shows the files were not damaged, not that they were not replaced", DATAPACKAGE)])


def pages_check(report: Report, sinks: dict, members: dict) -> None:
    sink = sinks.get(PAGES)
    if sink is None:
        report.add("pages", FAIL, f"{PAGES} is missing")
        return
    unread = getattr(members.get(PAGES), "error", None)
    if unread:      # damaged where it was read: its count of pages would mean nothing
        report.add("pages", FAIL, unread)
        return
    report.add("pages", FAIL if sink.problems else PASS,
               f"{count(len(sink.pages), 'page')} listed" + (", some lines unreadable" if sink.problems else ""),
               sink.problems.all())
