"""`archive profile create` and `archive profile show`: browser profiles for captures
behind a login."""

from __future__ import annotations

import sys

from archive.capture.cookiesfile import playwright_cookie
from archive.capture.credentials import CredentialsError, load_cookies
from archive.cli.common import print_json, sealed_url
from archive.errors import ArchiveError
from archive.profiles.passphrase import MISSING, PROFILE_PASSPHRASE_ENV, profile_passphrase
from archive.profiles.summary import summary
from archive.profiles.vault import open_profile, open_to_others, profile_file, save


def register(sub) -> None:
    parser = sub.add_parser("profile", help="browser profiles (logins) for captures behind a login")
    actions = parser.add_subparsers(dest="profile_command", metavar="ACTION")
    actions.required = True

    create = actions.add_parser(
        "create", help="log in in a browser window and save the session, encrypted",
        description="Opens a visible Chromium at --url for you to log in; when you close the "
                    "window (or press Enter in the terminal) its cookies and local storage are "
                    f"saved into DIR, encrypted with a passphrase (${PROFILE_PASSPHRASE_ENV}, "
                    "--passphrase-file, or asked for).")
    create.add_argument("dir", metavar="DIR", help="profile folder (made mode 0700)")
    source = create.add_mutually_exclusive_group(required=True)
    source.add_argument("--url", help="the login page to open")
    source.add_argument("--from-cookies", metavar="FILE",
                        help="make the profile from a Netscape cookies.txt instead (no display needed)")
    create.add_argument("--replace", action="store_true", help="overwrite a profile already in DIR")
    _passphrase_option(create)
    create.add_argument("--json", action="store_true", help="machine-readable output")
    create.set_defaults(run=run_create)

    show = actions.add_parser("show", help="list a profile's domains, cookie names and expiry (never values)")
    show.add_argument("dir", metavar="DIR", help="profile folder")
    _passphrase_option(show)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(run=run_show)


def _passphrase_option(parser) -> None:
    parser.add_argument("--passphrase-file", metavar="FILE",
                        help=f"read the profile's passphrase from FILE (default: ${PROFILE_PASSPHRASE_ENV}, "
                             "else asked for)")


def run_create(args) -> int:
    # what can be wrong is said before a passphrase is asked for or a window opened
    if profile_file(args.dir).exists() and not args.replace:
        raise ArchiveError(f"{profile_file(args.dir)} already exists; give --replace to overwrite that profile")
    if args.from_cookies:
        try:
            cookies, _ = load_cookies(args.from_cookies)     # the expired ones are left out
        except CredentialsError as exc:
            raise ArchiveError(str(exc).replace("--cookies ", "--from-cookies ", 1)) from None
        state = {"cookies": [playwright_cookie(c) for c in cookies], "origins": []}
        passphrase = _passphrase(args, confirm=True)
    else:
        url = sealed_url(args.url)
        from archive.profiles.login import check_display, interactive_login   # loads Playwright
        check_display()
        passphrase = _passphrase(args, confirm=True)
        state = interactive_login(url, say=lambda line: print(line, file=sys.stderr))
    return _saved(args, state, passphrase)


def _passphrase(args, confirm: bool = False) -> bytes:
    passphrase = profile_passphrase(args.passphrase_file, confirm=confirm)
    if not passphrase:
        raise ArchiveError(f"a profile is encrypted with a passphrase: {MISSING.replace('--profile-', '--')}")
    return passphrase


def _saved(args, state: dict, passphrase: bytes) -> int:
    path = save(args.dir, state, passphrase, replace=args.replace)
    if open_to_others(args.dir):
        print(f"archive: warning: {args.dir} can be listed by other users; `chmod 700 {args.dir}` "
              "keeps even the encrypted profile to you", file=sys.stderr)
    info = summary(open_profile(args.dir, passphrase))
    if args.json:
        print_json({"profile": str(path), **info})
    else:
        print(f"profile  {path} (mode 0600, encrypted)")
        _print_summary(info)
    return 0


def run_show(args) -> int:
    info = summary(open_profile(args.dir, _passphrase(args)))
    if args.json:
        print_json(info)
    else:
        _print_summary(info)
    return 0


def _print_summary(info: dict) -> None:
    ident = info["identity"]
    print(f"domains  {', '.join(info['domains']) or '(none)'}")
    print(f"cookies  {len(info['cookies'])}"
          + (f", {info['expired']} expired" if info["expired"] else "")
          + f" (names fingerprint {ident['cookieNamesSha256'][:16]}…)")
    for c in info["cookies"]:
        when = "session" if c["session"] else c["expires"]
        flag = "  EXPIRED" if c["expired"] else ""
        print(f"  {c['domain']}  {c['name']}  path {c['path']}  expires {when}{flag}")
    for origin in info["localStorage"]:
        print(f"local storage  {origin['origin']}: {', '.join(origin['localStorageKeys']) or '(empty)'}")
    if info["allExpired"]:
        print("every cookie has expired: log in again with `archive profile create DIR --url ... --replace`")
