"""Small write-once objects (custody ledger entries, job locks) in both kinds of store:
a local folder and an S3 bucket (moto's server over HTTP)."""

import threading

import pytest

from archive.errors import AlreadyExists, ArchiveError, NotFound, TooLarge
from archive.store.local import LocalStore
from archive.store.s3 import S3Location, S3Store


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "s")
    s3 = request.getfixturevalue("s3")
    return S3Store(S3Location(s3.bucket, "p"))


def test_objects_are_created_once_and_never_replaced(store):
    store.put_object("custody/00000001.json", b"first")
    with pytest.raises(AlreadyExists):
        store.put_object("custody/00000001.json", b"second")
    assert store.get_object("custody/00000001.json") == b"first"
    store.put_object("locks/job.lock", b"x")
    assert list(store.list_objects("custody")) == ["custody/00000001.json"]
    assert list(store.list_objects("")) == ["custody/00000001.json", "locks/job.lock"]
    with pytest.raises(NotFound):
        store.get_object("custody/00000002.json")
    store.delete_object("locks/job.lock")
    assert list(store.list_objects("locks")) == []
    store.put_object("locks/job.lock", b"again")        # a released lock can be taken again
    assert store.get_object("locks/job.lock") == b"again"
    with pytest.raises(NotFound):
        store.delete_object("locks/other.lock")


def test_concurrent_creators_of_one_key_exactly_one_wins(store):
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


def test_object_keys_cannot_escape_or_touch_captures(store):
    for key in ("../x", "/etc/passwd", "captures/2025/01/01/x.wacz", "a//b"):
        with pytest.raises(ArchiveError):
            store.put_object(key, b"x")
    with pytest.raises(ArchiveError, match="never overwritten or deleted"):
        store.delete_object("captures/2025/03/08/20250308T121500Z-7f3a9c21.wacz")
    assert list(store.list_objects("")) == []


def test_an_object_larger_than_its_reader_takes_is_refused_unread(store):
    store.put_object("timestamps/x/1.json", b"x" * 100)
    assert store.get_object("timestamps/x/1.json", limit=100) == b"x" * 100
    with pytest.raises(TooLarge):
        store.get_object("timestamps/x/1.json", limit=99)
