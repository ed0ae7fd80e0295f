import threading

import pytest

from archive.errors import AlreadyExists, ArchiveError, NotFound
from archive.store.local import LocalStore


def test_objects_are_created_once_and_never_replaced(tmp_path):
    store = LocalStore(tmp_path)
    store.put_object("custody/00000001.json", b"first")
    with pytest.raises(AlreadyExists):
        store.put_object("custody/00000001.json", b"second")
    assert store.get_object("custody/00000001.json") == b"first"
    assert list(store.list_objects("custody")) == ["custody/00000001.json"]
    with pytest.raises(NotFound):
        store.get_object("custody/00000002.json")
    store.delete_object("custody/00000001.json")
    assert list(store.list_objects("custody")) == []


def test_concurrent_creators_of_one_key_exactly_one_wins(tmp_path):
    store = LocalStore(tmp_path)
    wins, errors = [], []

    def attempt(n):
        try:
            store.put_object("locks/job.lock", str(n).encode())
            wins.append(n)
        except AlreadyExists:
            errors.append(n)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(errors) == 15
    assert store.get_object("locks/job.lock") == str(wins[0]).encode()


def test_object_keys_cannot_escape_or_touch_captures(tmp_path):
    store = LocalStore(tmp_path / "s")
    for key in ("../x", "/etc/passwd", "captures/2025/01/01/x.wacz", "a//b"):
        with pytest.raises(ArchiveError):
            store.put_object(key, b"x")
