"""Artifacts in Amazon S3 or an S3-compatible service (`s3://bucket/prefix`), through boto3.

Credentials and region come from boto3's standard chain (environment, shared config and
credentials files with AWS_PROFILE, SSO, web identity, container and instance roles).
The endpoint is boto3's (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, `endpoint_url` in the
profile) unless KITARU_S3_ENDPOINT_URL overrides it for Kitaru alone.

A value larger than one part is a multipart upload: parts are sent in parallel straight
from the caller's memoryview, and the object only exists once the upload is completed,
so a writer killed halfway leaves an incomplete upload that no read or listing sees
(a bucket lifecycle rule `AbortIncompleteMultipartUpload` reclaims its space). Reads
fetch ranges in parallel into the buffer that becomes the returned bytes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from kitaru._config import Durability
from kitaru._errors import ConfigurationError
from kitaru.artifacts._buffer import Buffer, OnData
from kitaru.artifacts._object import (
    ATTEMPTS,
    Location,
    MiB,
    ViewReader,
    env_int,
    part_ranges,
    run_parts,
    unreachable,
)

# Parts of 8 MiB and 10 in flight match boto3's transfer manager defaults; S3 allows at
# most 10,000 parts, so larger values use larger parts.
PART_SIZE = 8 * MiB
MAX_PARTS = 10_000

_NETWORK_ERRORS = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ProxyConnectionError,
    botocore.exceptions.SSLError,
)


class S3ArtifactStore:
    def __init__(self, uri: str, durability: Durability = Durability.PROCESS) -> None:
        del durability  # S3 acknowledges a write only once it is durably stored
        self._at = Location(uri, "s3", "bucket")
        self.uri = self._at.uri
        self.bucket = self._at.bucket
        self.part_size = env_int("KITARU_S3_PART_SIZE", PART_SIZE)
        self.workers = env_int("KITARU_S3_MAX_CONCURRENCY", 10)
        self._endpoint = os.environ.get("KITARU_S3_ENDPOINT_URL") or None
        self._clients: dict[tuple[int, float], Any] = {}
        self._lock = threading.Lock()

    def _client(self, *, attempts: int = ATTEMPTS, timeout: float = 60) -> Any:
        # boto3 sessions are not thread-safe but clients are: build each client once,
        # under a lock, and share it between threads.
        with self._lock:
            client = self._clients.get((attempts, timeout))
            if client is None:
                config = Config(
                    max_pool_connections=self.workers + 4,
                    retries={"mode": "standard", "max_attempts": attempts},
                    connect_timeout=min(timeout, 10),
                    read_timeout=timeout,
                    # Kitaru verifies every read against the content hash in the journal.
                    response_checksum_validation="when_required",
                )
                client = boto3.session.Session().client(
                    "s3", endpoint_url=self._endpoint, config=config
                )
                self._clients[(attempts, timeout)] = client
            return client

    @property
    def endpoint(self) -> str:
        try:
            return str(self._client().meta.endpoint_url)
        except Exception:
            return self._endpoint or "the default AWS endpoint"

    def check(self) -> None:
        where = f"artifact store {self.uri} (endpoint {self.endpoint})"
        try:
            self._client(attempts=2, timeout=10).head_bucket(Bucket=self.bucket)
        except botocore.exceptions.NoCredentialsError:
            raise ConfigurationError(
                f"{where}: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run where an IAM role is attached"
            ) from None
        except botocore.exceptions.ClientError as exc:
            raise _client_error(where, self.bucket, exc) from None
        except _NETWORK_ERRORS as exc:
            raise unreachable(self.uri, self.endpoint, exc) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise ConfigurationError(
                f"{where} cannot be used ({type(exc).__name__}: {exc}); check the AWS "
                "configuration (region, profile, endpoint)"
            ) from None

    def write(self, key: str, data: bytes | memoryview) -> str:
        name = self._at.name_of(key)
        view = memoryview(data).cast("B")
        client = self._client()
        size = len(view)
        part_size = max(self.part_size, -(-size // MAX_PARTS))
        if size <= part_size:
            client.put_object(Bucket=self.bucket, Key=name, Body=ViewReader(view))
            return self._at.uri_of(key)
        # CRC32 per part, as boto3's transfer manager sends: S3 checks each part on arrival.
        upload_id = client.create_multipart_upload(
            Bucket=self.bucket, Key=name, ChecksumAlgorithm="CRC32"
        )["UploadId"]

        def send(number: int, start: int, end: int) -> dict[str, Any]:
            reply = client.upload_part(
                Bucket=self.bucket,
                Key=name,
                UploadId=upload_id,
                PartNumber=number,
                Body=ViewReader(view[start:end]),
                ChecksumAlgorithm="CRC32",
            )
            part = {"PartNumber": number, "ETag": reply["ETag"]}
            if "ChecksumCRC32" in reply:
                part["ChecksumCRC32"] = reply["ChecksumCRC32"]
            return part

        try:
            parts = run_parts(self.workers, part_ranges(size, part_size), send)
            client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=name,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            try:
                client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
            except Exception:
                pass  # the upload stays invisible; a lifecycle rule reclaims it
            raise
        return self._at.uri_of(key)

    def read(self, key: str, on_data: OnData | None = None) -> bytes:
        for attempt in range(3):
            try:
                return self._read_once(key, on_data)
            except botocore.exceptions.ClientError as exc:
                # Overwritten while we read (the ETag we pinned is gone): read the new value.
                if _status(exc) != 412 or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _read_once(self, key: str, on_data: OnData | None) -> bytes:
        name = self._at.name_of(key)
        client = self._client()
        try:
            head = client.head_object(Bucket=self.bucket, Key=name)
        except botocore.exceptions.ClientError as exc:
            if _status(exc) == 404:
                raise KeyError(key) from None
            raise
        size = int(head["ContentLength"])
        # Pin the version read: a concurrent overwrite must not mix two values' parts.
        etag = head["ETag"]
        buffer = Buffer(size, on_data)

        def fetch(_number: int, start: int, end: int) -> None:
            reply = client.get_object(
                Bucket=self.bucket, Key=name, Range=f"bytes={start}-{end - 1}", IfMatch=etag
            )
            body = reply["Body"]
            with buffer.view[start:end] as view:
                got = 0
                while got < len(view):
                    with view[got:] as rest:
                        n = body.readinto(rest)
                    if not n:
                        raise OSError(f"{self.uri}: {name} ended after {start + got} bytes")
                    buffer.filled(start + got, start + got + n)
                    got += n
            body.close()

        try:
            run_parts(self.workers, part_ranges(size, self.part_size), fetch)
        except BaseException:
            buffer.discard()
            raise
        return buffer.value()

    def exists(self, key: str) -> bool:
        try:
            self._client().head_object(Bucket=self.bucket, Key=self._at.name_of(key))
        except botocore.exceptions.ClientError as exc:
            if _status(exc) == 404:
                return False
            raise
        return True

    def list(self, prefix: str = "") -> Iterator[str]:
        pages = self._client().get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.bucket, Prefix=self._at.list_prefix(prefix)):
            for item in page.get("Contents", ()):
                yield self._at.key_from_name(item["Key"])

    def delete(self, key: str) -> None:
        self._client().delete_object(Bucket=self.bucket, Key=self._at.name_of(key))

    def key_of(self, uri: str) -> str:
        return self._at.key_of(uri)


def _status(exc: botocore.exceptions.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _client_error(
    where: str, bucket: str, exc: botocore.exceptions.ClientError
) -> ConfigurationError:
    status = _status(exc)
    code = exc.response.get("Error", {}).get("Code", "")
    if status == 404 or code in ("NoSuchBucket", "404"):
        return ConfigurationError(
            f"{where}: bucket {bucket!r} does not exist; create it or fix the bucket name"
        )
    if status in (401, 403) or code in ("InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return ConfigurationError(
            f"{where}: access denied to bucket {bucket!r} ({code or status}); check the AWS "
            "credentials (AWS_ACCESS_KEY_ID/AWS_PROFILE/role) and that they may read and "
            "write the bucket"
        )
    if status == 301 or code in ("PermanentRedirect", "AuthorizationHeaderMalformed"):
        return ConfigurationError(
            f"{where}: bucket {bucket!r} is in another region ({code or status}); set "
            "AWS_REGION to the bucket's region"
        )
    return ConfigurationError(
        f"{where}: the service answered {code or status}; check the bucket, endpoint and "
        "credentials"
    )
