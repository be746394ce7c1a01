"""One contract, every artifact store: local disk, S3 (LocalStack and moto), GCS
(gcp-storage-emulator) and Azure Blob (Azurite)."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest

import kitaru.artifacts
from kitaru.artifacts import ArtifactStore

from .backends import OBJECT_BACKENDS, Backend

MiB = 1 << 20


def test_write_read_exists_delete(store: ArtifactStore) -> None:
    uri = store.write("kx_1/ka_1", b"hello")
    assert store.read("kx_1/ka_1") == b"hello"
    assert store.exists("kx_1/ka_1")
    assert store.key_of(uri) == "kx_1/ka_1"
    assert uri.startswith(store.uri + "/")

    store.delete("kx_1/ka_1")
    assert not store.exists("kx_1/ka_1")
    with pytest.raises(KeyError):
        store.read("kx_1/ka_1")


def test_memoryview_and_empty_values(store: ArtifactStore) -> None:
    data = bytearray(os.urandom(3 * 1024))
    store.write("kx_1/view", memoryview(data)[1024:])
    assert store.read("kx_1/view") == bytes(data[1024:])
    store.write("kx_1/empty", b"")
    assert store.read("kx_1/empty") == b""
    assert store.exists("kx_1/empty")


def test_overwrite_replaces_the_value(store: ArtifactStore) -> None:
    store.write("kx_1/a", b"first")
    store.write("kx_1/a", b"second value")
    assert store.read("kx_1/a") == b"second value"
    assert list(store.list("kx_1/")) == ["kx_1/a"]


def test_missing_keys(store: ArtifactStore) -> None:
    with pytest.raises(KeyError):
        store.read("kx_none/ka_none")
    assert not store.exists("kx_none/ka_none")
    store.delete("kx_none/ka_none")  # deleting what is not there is not an error
    assert list(store.list("kx_none/")) == []


@pytest.mark.parametrize("bad", ["", "/abs", "a//b", "a/../b", "./a", "a/"])
def test_invalid_keys_are_refused(store: ArtifactStore, bad: str) -> None:
    with pytest.raises(ValueError, match="invalid artifact key"):
        store.write(bad, b"x")


def test_listing_by_prefix(store: ArtifactStore) -> None:
    for key in ["kx_a/1", "kx_a/2", "kx_ab/3", "kx_b/4", "kx_a/deep/5"]:
        store.write(key, key.encode())
    assert sorted(store.list("kx_a/")) == ["kx_a/1", "kx_a/2", "kx_a/deep/5"]
    assert sorted(store.list("kx_a")) == ["kx_a/1", "kx_a/2", "kx_a/deep/5", "kx_ab/3"]
    assert sorted(store.list()) == ["kx_a/1", "kx_a/2", "kx_a/deep/5", "kx_ab/3", "kx_b/4"]


@pytest.mark.parametrize("backend", OBJECT_BACKENDS, indirect=True)
def test_prefixes_of_one_bucket_do_not_see_each_other(backend: Backend) -> None:
    a = kitaru.artifacts.open_store(backend.uri)
    b = kitaru.artifacts.open_store(backend.uri + "2")  # same bucket, prefix runs2
    a.write("k/1", b"a")
    b.write("k/1", b"b")
    assert list(a.list()) == ["k/1"]
    assert list(b.list()) == ["k/1"]
    assert (a.read("k/1"), b.read("k/1")) == (b"a", b"b")


def test_unicode_keys(store: ArtifactStore) -> None:
    keys = ["kx_ü/résumé ✓", "kx_ü/日本語/データ", "kx_ü/emoji 🦀 spaces & %20 ~"]
    for i, key in enumerate(keys):
        uri = store.write(key, str(i).encode())
        assert store.key_of(uri) == key
    assert sorted(store.list("kx_ü/")) == sorted(keys)
    assert [store.read(k) for k in keys] == [b"0", b"1", b"2"]


def test_large_value_in_parts(store: ArtifactStore) -> None:
    # Bigger than every store's part, chunk and block size, and not a multiple of them.
    data = os.urandom(40 * MiB + 12345)
    store.write("kx_big/value", memoryview(data))
    pieces: list[int] = []
    hasher = hashlib.blake2b(digest_size=16)

    def seen(piece: memoryview) -> None:
        pieces.append(len(piece))
        hasher.update(piece)

    back = store.read("kx_big/value", on_data=seen)
    assert back == data
    assert type(back) is bytes
    assert sum(pieces) == len(data)  # every byte was passed on, once, in order
    assert hasher.hexdigest() == hashlib.blake2b(data, digest_size=16).hexdigest()
    store.delete("kx_big/value")


def test_on_data_failure_fails_the_read(store: ArtifactStore) -> None:
    store.write("kx_1/v", os.urandom(2 * MiB))

    def boom(piece: memoryview) -> None:
        raise RuntimeError("hash exploded")

    with pytest.raises(RuntimeError, match="hash exploded"):
        store.read("kx_1/v", on_data=boom)


def test_concurrent_writers(store: ArtifactStore) -> None:
    values = {f"kx_c/{i}": os.urandom(MiB + i * 1000) for i in range(8)}
    same = [os.urandom(3 * MiB // 2) for _ in range(4)]
    errors: list[BaseException] = []

    def write(key: str, data: bytes) -> None:
        try:
            store.write(key, data)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=item) for item in values.items()]
    threads += [threading.Thread(target=write, args=("kx_c/same", d)) for d in same]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for key, data in values.items():
        assert store.read(key) == data
    # Writers racing on one key leave exactly one of their values, never a mixture.
    assert store.read("kx_c/same") in same
    assert sorted(store.list("kx_c/")) == sorted([*values, "kx_c/same"])
