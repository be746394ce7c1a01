"""Artifacts in Google Cloud Storage (`gs://bucket/prefix`), through google-cloud-storage.

Credentials come from Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS,
`gcloud auth application-default login`, workload identity, the metadata server); the
project from GOOGLE_CLOUD_PROJECT or the credentials. STORAGE_EMULATOR_HOST points the
client at an emulator (without credentials); KITARU_GCS_ENDPOINT_URL at another
endpoint with credentials.

A value larger than one chunk is a resumable upload sent chunk by chunk from the
caller's memoryview; the object appears only when the last chunk is committed, so a
writer killed halfway leaves an unfinished session that no read or listing sees (GCS
drops it after a week).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import google.auth.exceptions
import requests.exceptions
from google.api_core import exceptions as gexc

# google-cloud-run (same namespace, typed) hides the untyped storage module from mypy.
from google.cloud import storage  # type: ignore[attr-defined, unused-ignore]
from google.cloud.storage.retry import DEFAULT_RETRY

from kitaru._config import Durability
from kitaru._errors import ConfigurationError
from kitaru.artifacts._buffer import Buffer, OnData
from kitaru.artifacts._object import (
    RETRY_SECONDS,
    Location,
    MiB,
    ViewReader,
    env_int,
    unreachable,
)

# Resumable uploads send chunks one after the other, each a multiple of 256 KiB.
CHUNK_SIZE = 16 * MiB
_TIMEOUT = (10, 120)
# The library's default retry, bounded like the other stores. Uploads get it too: by
# default the library retries an upload only with a generation precondition, and an
# upload of one artifact's bytes, made again, writes the same bytes.
_RETRY = DEFAULT_RETRY.with_timeout(RETRY_SECONDS)


class GCSArtifactStore:
    def __init__(self, uri: str, durability: Durability = Durability.PROCESS) -> None:
        del durability  # GCS acknowledges a write only once it is durably stored
        self._at = Location(uri, "gs", "bucket")
        self.uri = self._at.uri
        self.chunk_size = env_int("KITARU_GCS_CHUNK_SIZE", CHUNK_SIZE)
        if self.chunk_size % (256 * 1024):
            raise ConfigurationError(
                f"KITARU_GCS_CHUNK_SIZE={self.chunk_size} must be a multiple of 262144 (256 KiB)"
            )
        self._lock = threading.Lock()
        self._storage: storage.Client | None = None

    def _client(self) -> storage.Client:
        with self._lock:
            if self._storage is None:
                endpoint = os.environ.get("KITARU_GCS_ENDPOINT_URL")
                options = {"api_endpoint": endpoint} if endpoint else None
                self._storage = storage.Client(client_options=options)
            return self._storage

    def _bucket(self) -> storage.Bucket:
        return self._client().bucket(self._at.bucket)

    @property
    def endpoint(self) -> str:
        return (
            os.environ.get("KITARU_GCS_ENDPOINT_URL")
            or os.environ.get("STORAGE_EMULATOR_HOST")
            or "https://storage.googleapis.com"
        )

    def check(self) -> None:
        where = f"artifact store {self.uri} (endpoint {self.endpoint})"
        try:
            self._bucket().reload(timeout=(5, 10), retry=None)
        except google.auth.exceptions.DefaultCredentialsError:
            raise ConfigurationError(
                f"{where}: no Google Cloud credentials found; set "
                "GOOGLE_APPLICATION_CREDENTIALS, run `gcloud auth application-default "
                "login`, or run where a service account is attached"
            ) from None
        except google.auth.exceptions.GoogleAuthError as exc:
            raise ConfigurationError(
                f"{where}: the Google Cloud credentials do not work ({type(exc).__name__}); "
                "check GOOGLE_APPLICATION_CREDENTIALS or the attached service account"
            ) from None
        except gexc.NotFound:
            raise ConfigurationError(
                f"{where}: bucket {self._at.bucket!r} does not exist; create it or fix the "
                "bucket name"
            ) from None
        except (gexc.Forbidden, gexc.Unauthorized) as exc:
            raise ConfigurationError(
                f"{where}: access denied to bucket {self._at.bucket!r} ({exc.code}); check "
                "the credentials and that they may read and write the bucket"
            ) from None
        except requests.exceptions.RequestException as exc:
            raise unreachable(self.uri, self.endpoint, exc) from None
        except gexc.GoogleAPICallError as exc:
            raise ConfigurationError(
                f"{where}: the service answered {exc.code}; check the bucket, endpoint and "
                "credentials"
            ) from None

    def write(self, key: str, data: bytes | memoryview) -> str:
        view = memoryview(data).cast("B")
        blob = self._bucket().blob(self._at.name_of(key), chunk_size=self.chunk_size)
        if len(view) <= self.chunk_size:
            blob.chunk_size = None
        # Kitaru checks content hashes itself; crc32c here also lets GCS reject a
        # damaged upload before it becomes the object.
        blob.upload_from_file(
            ViewReader(view),
            size=len(view),
            rewind=False,
            checksum="crc32c",
            timeout=_TIMEOUT,
            retry=_RETRY,
        )
        return self._at.uri_of(key)

    def read(self, key: str, on_data: OnData | None = None) -> bytes:
        name = self._at.name_of(key)
        for attempt in range(3):
            meta = self._bucket().blob(name)
            try:
                meta.reload(timeout=_TIMEOUT, retry=_RETRY)
            except gexc.NotFound:
                raise KeyError(key) from None
            buffer = Buffer(int(meta.size or 0), on_data)
            # A fresh blob builds the download URL from the name (the metadata's media
            # link is not always encoded right by emulators); pinning the generation
            # keeps a concurrent overwrite from mixing two values.
            try:
                self._bucket().blob(name).download_to_file(
                    buffer,
                    checksum=None,
                    timeout=_TIMEOUT,
                    retry=_RETRY,
                    if_generation_match=meta.generation,
                )
            except gexc.PreconditionFailed:
                buffer.discard()
                if attempt == 2:
                    raise
                continue  # overwritten meanwhile: read the new value
            except BaseException:
                buffer.discard()
                raise
            return buffer.value()
        raise AssertionError("unreachable")

    def exists(self, key: str) -> bool:
        return bool(
            self._bucket().blob(self._at.name_of(key)).exists(timeout=_TIMEOUT, retry=_RETRY)
        )

    def list(self, prefix: str = "") -> Iterator[str]:
        blobs: Any = self._client().list_blobs(
            self._at.bucket, prefix=self._at.list_prefix(prefix), timeout=_TIMEOUT, retry=_RETRY
        )
        for blob in blobs:
            yield self._at.key_from_name(blob.name)

    def delete(self, key: str) -> None:
        try:
            self._bucket().blob(self._at.name_of(key)).delete(timeout=_TIMEOUT, retry=_RETRY)
        except gexc.NotFound:
            pass

    def key_of(self, uri: str) -> str:
        return self._at.key_of(uri)
