"""boto3 clients for the audit: adaptive retries, an optional endpoint (moto on loopback in
tests), a record of every API operation called (checked against the audit role's policy), and
one way to read an answer that tells "not configured" from "could not be read"."""
from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Callable, Iterator

import boto3
import botocore.config
import botocore.exceptions

# Throttling is retried by botocore (adaptive mode); what is still failing after that is a fault.
RETRIES = {"mode": "adaptive", "max_attempts": 10}


class Unreadable:
    """An answer the API would not give; `reason` names the operation and the error."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"Unreadable({self.reason!r})"


class Clients:
    """Clients of one account (one boto3 session), per service and region, shared by threads."""

    def __init__(self, session: boto3.Session, *, endpoint_url: str | None = None, account: str | None = None,
                 max_pool: int = 16) -> None:
        self.session = session
        self.endpoint_url = endpoint_url
        self.concurrency = max(1, max_pool // 2)  # readers a collector may run side by side
        self.config = botocore.config.Config(retries=RETRIES, max_pool_connections=max_pool,
                                             connect_timeout=10, read_timeout=30)
        self.calls: Counter = Counter()  # "s3:ListBuckets" -> times called
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._account = account

    def __call__(self, service: str, region: str) -> Any:
        key = (service, region)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self.session.client(service, region_name=region, endpoint_url=self.endpoint_url,
                                             config=self.config)
                # S3 Control signs as "s3" but needs other permissions than S3's calls of the
                # same name (GetPublicAccessBlock): keep it apart (audit/permissions.py)
                prefix = "s3control" if service == "s3control" else client.meta.service_model.signing_name
                client.meta.events.register("before-call", self._recorder(prefix))
                self._clients[key] = client
            return client

    def _recorder(self, prefix: str) -> Callable:
        def record(model, **_: Any) -> None:
            with self._lock:
                self.calls[f"{prefix}:{model.name}"] += 1
        return record

    @property
    def account(self) -> str:
        if self._account is None:
            region = self.session.region_name or "us-east-1"
            self._account = self("sts", region).get_caller_identity()["Account"]
        return self._account


def read(call: Callable[[], Any], *, missing: tuple[str, ...] = ()) -> Any:
    """The answer of `call`, None when the error code is one of `missing` (the setting is simply
    not there, e.g. a bucket without a policy), or an Unreadable with the reason."""
    try:
        return call()
    except botocore.exceptions.ClientError as e:
        error = e.response.get("Error", {})
        code = error.get("Code", "Error")
        if code in missing:
            return None
        operation = getattr(e, "operation_name", "the call")
        return Unreadable(f"{operation} failed: {code}: {error.get('Message') or 'no message'}")
    except (botocore.exceptions.BotoCoreError, OSError) as e:
        return Unreadable(f"the API could not be reached: {e}")


def pages(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
    """Every item under `key` across all pages of `operation` (errors propagate: see read)."""
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def listing(client: Any, operation: str, key: str, **kwargs: Any) -> list | Unreadable:
    """`pages` read whole, or an Unreadable: a listing that breaks halfway is not trusted."""
    return read(lambda: list(pages(client, operation, key, **kwargs)))
