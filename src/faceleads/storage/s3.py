"""The blob store on an S3-compatible object store (AWS S3, MinIO, Ceph RGW, ...), shared by every host.

Objects are named ``<prefix><a0a1>/<a2a3>/<address>`` and hold the same AES-256-GCM ciphertext as the local folder
(the object store never sees a key or a plaintext byte). A single PUT is atomic, so readers see whole blobs only.
Server-side encryption and versioning are the operator's choice: with versioning on, a deleted blob survives as a
noncurrent version; it stays unreadable after a destruction (its key is gone), and a lifecycle rule should expire
noncurrent versions (docs/deployment.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from faceleads.config import Settings
from faceleads.errors import ConfigurationError, NotFound
from faceleads.storage.blobs import _ADDRESS_RE, shard_key

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


class S3Backend:
    """Blobs as objects in ``bucket`` under ``prefix`` (see the module docstring)."""

    def __init__(self, client: Any, bucket: str, prefix: str = "faceleads/") -> None:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.description = f"bucket s3://{bucket}/{prefix}"

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Backend:
        """A backend from ``FACELEADS_S3_*`` (credentials from the standard AWS sources unless set there)."""
        import boto3
        from botocore.config import Config

        if not settings.s3_bucket:
            raise ConfigurationError("FACELEADS_BLOB_STORE=s3 needs FACELEADS_S3_BUCKET")
        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, s3={"addressing_style": "path"}),
        )
        return cls(client, settings.s3_bucket, settings.s3_prefix)

    def _key(self, address: str) -> str:
        return self.prefix + shard_key(address)

    @staticmethod
    def _missing(exc: Exception) -> bool:
        error = getattr(exc, "response", {}).get("Error", {})
        return str(error.get("Code")) in _NOT_FOUND

    def read(self, address: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(address))
        except Exception as exc:
            if self._missing(exc):
                raise NotFound(f"blob {address} is not in the store {self.description}") from None
            raise
        data: bytes = response["Body"].read()
        return data

    def write(self, address: str, payload: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(address), Body=bytes(payload))

    def exists(self, address: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(address))
        except Exception as exc:
            if self._missing(exc):
                return False
            raise
        return True

    def delete(self, address: str) -> bool:
        present = self.exists(address)
        self.client.delete_object(Bucket=self.bucket, Key=self._key(address))  # idempotent on S3
        return present

    def _objects(self) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            yield from page.get("Contents", [])

    def addresses(self) -> Iterator[str]:
        for obj in self._objects():
            name = obj["Key"].rsplit("/", 1)[-1]
            if _ADDRESS_RE.fullmatch(name):
                yield name

    def remove_orphans(self, referenced: set[str], *, min_age_seconds: float = 0.0) -> int:
        cutoff = time.time() - min_age_seconds
        doomed = []
        for obj in self._objects():
            name = obj["Key"].rsplit("/", 1)[-1]
            if not _ADDRESS_RE.fullmatch(name) or name in referenced:
                continue
            if min_age_seconds > 0 and obj["LastModified"].timestamp() > cutoff:
                continue
            doomed.append(obj["Key"])
        for start in range(0, len(doomed), 1000):
            chunk = doomed[start : start + 1000]
            self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
            )
        return len(doomed)


__all__ = ["S3Backend"]
