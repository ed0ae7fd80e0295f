"""How a stored capture is said on a terminal: the lines `archive capture` and `archive
jobs run` print (and `archive timestamp` its tokens' lines)."""

from __future__ import annotations

from archive.values import human_bytes


def print_capture_result(result: dict, media: bool = False, dedup_against: str | None = None) -> None:
    """A stored capture (CaptureResult.to_dict()): id, address, SHA-256, signer, lock,
    what was fetched, why it stopped early, its timestamps. `media`: --media was asked
    for (its line is shown even when nothing was found); `dedup_against`: the capture
    its revisits point into."""
    print(f"capture  {result['capture_id']}")
    print(f"stored   {result['address']}")
    print(f"sha256   {result['sha256']}")
    print(f"signer   {result.get('signer') or 'UNSIGNED'}")
    if result.get("lock"):
        print(f"locked   {result['lock']}")
    revisits = result.get("revisits")
    since = f" since {dedup_against}" if dedup_against else ""
    # `failed` counts every failed fetch, pages and requisites alike (with --browser,
    # often only the favicon Chromium asks for on its own).
    print(f"pages    {result['pages']}, requisites {result['requisites']}, "
          f"failed fetches {result['failed']}, {human_bytes(result['bytes'])}"
          + (f", {revisits} payloads unchanged{since} as revisits" if revisits else ""))
    if media or result.get("media") or result.get("media_failed"):
        print(f"media    {result.get('media', 0)} recorded, {result.get('media_failed', 0)} failed "
              "(evidence/capture.json says what became of each)")
    if result.get("stop_reason"):
        print(f"stopped  {result['stop_reason']} reached; some queued URLs were not fetched")
    for cut in result.get("cut_back") or ():
        print(f"cut back {cut['groups']} fetches journaled before {cut['at']} had lost "
              "their records on disk (a power failure) and were fetched again")
    print_timestamps(result.get("timestamps") or [], result["capture_id"])
    for wall in result.get("logged_out") or ():
        print(f"logged out {wall['url']}: {wall['error'].removeprefix('logged out: ')}")


def print_timestamps(entries: list[dict], capture_id: str) -> None:
    """One line per TSA asked: the time it states, or why there is no token."""
    for entry in entries:
        if entry.get("time"):
            print(f"time     {entry['time']} stated by {entry['tsa']} (verify with --trust-tsa)")
        else:
            print(f"time     NO TOKEN from {entry['tsa']}: {entry.get('error')} "
                  f"(add one later: archive timestamp {capture_id} --tsa URL)")
