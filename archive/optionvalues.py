"""Reading an option's value by one rule, whether it comes as text from the command line
or as a TOML value from a job file: a Kind holds both readers.

Each reader raises ValueError with a message fit to show as it is; the command line puts
the flag before it, a job file the key and its line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from archive.errors import ArchiveError
from archive.redisconn import redis_url
from archive.values import parse_duration, parse_limit, parse_regex, parse_size, parse_viewport

MAX_SECONDS = 3650 * 86400       # any duration in a job file: ten years

# -- job files: each check takes the TOML value and the job file's folder ----------------

Check = Callable[[Any, Path], Any]


def describe(value) -> str:
    """What a TOML value is, in words (for 'must be ..., not ...')."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _typed(expected: type | tuple, what: str) -> Callable[[Any], Any]:
    def check(value):
        # TOML booleans are Python ints: never accept one for the other.
        if isinstance(value, bool) != (expected is bool) or not isinstance(value, expected):
            raise ValueError(f"must be {what}, not {describe(value)}")
        return value
    return check


as_text = _typed(str, "text in quotes")
_bool = _typed(bool, "true or false")


def text(value, base):
    return as_text(value)


def non_empty_text(value, base):
    if not as_text(value).strip():
        raise ValueError("must not be empty")
    return value


def boolean(value, base):
    return _bool(value)


def whole(minimum: int) -> Check:
    def check(value, base):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be a whole number, not {describe(value)}")
        if value < minimum:
            raise ValueError(f"must be {minimum} or more, not {value}")
        return value
    return check


def size(value, base):
    if isinstance(value, int) and not isinstance(value, bool):
        return whole(0)(value, base)
    return parse_size(as_text(value))


def size_limit(value, base):
    """A size, or "none" (no limit)."""
    if isinstance(value, str) and value.strip().lower() in ("none", "unlimited"):
        return None
    return size(value, base)


def _seconds(value) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        seconds = parse_duration(as_text(value))
    # TOML has nan and inf, and "99999999999999999999d" parses: either would end a
    # scheduler's date arithmetic in an internal error, not a line of this file.
    if not math.isfinite(seconds):
        raise ValueError(f"must be a finite number of seconds, not {value}")
    if seconds > MAX_SECONDS:
        raise ValueError(f"must be at most {MAX_SECONDS // 86400} days, not {value}")
    if seconds < 0:
        raise ValueError(f"must not be negative, not {value}")
    return seconds


def duration(value, base):
    seconds = _seconds(value)
    if seconds <= 0:
        raise ValueError("must be more than zero")
    return seconds


def pause(value, base):
    """A duration that may be zero (no wait)."""
    return _seconds(value)


def viewport(value, base):
    return parse_viewport(as_text(value))


def choice(options: tuple[str, ...]) -> Check:
    def check(value, base):
        if as_text(value) not in options:
            raise ValueError(f"must be one of {', '.join(options)}, not {value!r}")
        return value
    return check


def text_list(value, base):
    if not isinstance(value, list):
        raise ValueError(f"must be a list of texts, not {describe(value)}")
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"must be a list of texts; {describe(item)} is not one")
    return list(value)


def regex_list(value, base):
    return [parse_regex(pattern) for pattern in text_list(value, base)]


# The login checks are the crawl's own (archive.capture.credentials, .loginwall), imported
# when used: a command that reads captures never loads the crawler for its flags.

def header_list(value, base):
    """Extra request headers, each 'Name: value' (checked as --header's are)."""
    from archive.capture import credentials

    items = text_list(value, base)
    try:
        credentials.check_headers(items, [])
    except credentials.CredentialsError as exc:
        raise ValueError(str(exc).replace("--header ", "")) from None
    return items


def header_names(value, base):
    """Header names (as --secret-header's)."""
    from archive.capture import credentials

    items = text_list(value, base)
    try:
        return [credentials.parse_header_name(item) for item in items]
    except credentials.CredentialsError as exc:
        raise ValueError(str(exc).replace("--secret-header ", "")) from None


def selector(text: str) -> str:
    """A CSS selector lexbor understands."""
    from archive.capture.loginwall import check_selector

    return check_selector(text)


def selector_list(value, base):
    return [selector(item) for item in text_list(value, base)]


def env_name(value, base):
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", as_text(value)):
        raise ValueError(f"{value!r} is not an environment variable name")
    return value


def path(value, base):
    """A file or folder, relative to the job file's own folder."""
    return base / Path(non_empty_text(value, base)).expanduser()


def redis_address(value, base):
    try:
        return redis_url(as_text(value))
    except ArchiveError as exc:
        raise ValueError(str(exc)) from None


# -- the command line: each reader takes the text after the flag -------------------------

def whole_text(minimum: int) -> Callable[[str], int]:
    """A whole number, `minimum` or more."""
    def read(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise ValueError(f"must not be negative: {text}" if minimum == 0
                             else f"must be {minimum} or more, not {text}")
        return value
    return read


def positive_duration_text(text: str) -> float:
    """A duration more than zero (a zero timeout would fail every fetch)."""
    seconds = parse_duration(text)
    if not seconds > 0:
        raise ValueError(f"must be more than zero: {text!r}")
    return seconds


# -- kinds: both readers of one kind of value ---------------------------------------------

@dataclass(frozen=True)
class Kind:
    """One kind of option value: how the command line's text and a job file's TOML value
    are read (by the same rule, so that both refuse what one refuses)."""

    from_text: Callable[[str], Any] | None    # None: a switch, no value on the command line
    from_toml: Check
    choices: tuple[str, ...] | None = None
    repeat: bool = False                      # the flag may be given again; the key is a list


SWITCH = Kind(None, boolean)
SIZE = Kind(parse_size, size)
SIZE_LIMIT = Kind(parse_limit, size_limit)
DURATION = Kind(positive_duration_text, duration)   # more than zero
PAUSE = Kind(parse_duration, pause)                 # zero allowed
# more than zero too: on the command line, said by the options it goes into (in their words)
LATER_DURATION = Kind(parse_duration, duration)
REGEX = Kind(parse_regex, regex_list, repeat=True)
# on the command line as given: what is wrong with an empty one is said where it is used
TEXT = Kind(str, non_empty_text)
VIEWPORT = Kind(parse_viewport, viewport)
FILE = Kind(Path, path)
# on the command line as given, checked when the capture starts (a one-line error there);
# a job file's when it is read
HEADERS = Kind(str, header_list, repeat=True)
HEADER_NAMES = Kind(str, header_names, repeat=True)
SELECTORS = Kind(selector, selector_list, repeat=True)
# a job file's only: where to read a passphrase from (no flag: the command line has its
# variable and asks)
ENV_NAME = Kind(str, env_name)
# on the command line as given: $ARCHIVE_REDIS stands in for it, and both are checked then
REDIS = Kind(str, redis_address)


def whole_kind(minimum: int) -> Kind:
    return Kind(whole_text(minimum), whole(minimum))


def choice_kind(options: tuple[str, ...]) -> Kind:
    return Kind(str, choice(options), choices=options)
