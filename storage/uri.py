"""Table locations are URIs: a local path (or file://) or an object-store URI such as
s3://bucket/prefix, which pyarrow, polars and Lance read and write with the usual `AWS_*`
environment variables (tests/test_object_store.py runs a store on an S3 API server). Other
schemes go to pyarrow's `FileSystem.from_uri` as they are.

Every location is built with `join`, never with `os.path`, so names never assume a local disk.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

_LOCAL_SCHEMES = ("", "file")


def is_local(uri: str) -> bool:
    """True for plain paths and file:// URIs (a Windows drive letter is a path, not a scheme)."""
    scheme = urlparse(uri).scheme
    return scheme in _LOCAL_SCHEMES or len(scheme) == 1


def local_path(uri: str) -> str:
    """The filesystem path of a local URI; ValueError for an object-store URI."""
    if not is_local(uri):
        raise ValueError(f"{uri} is not a local location")
    return urlparse(uri).path if uri.startswith("file://") else uri


def normalize(uri: str, base: str | None = None) -> str:
    """Make a local path absolute (relative to `base` when given); leave other URIs as they are."""
    if not is_local(uri):
        return uri.rstrip("/")
    path = os.path.expanduser(local_path(uri))
    if not os.path.isabs(path):
        path = os.path.join(base or os.getcwd(), path)
    return os.path.normpath(path)


def join(uri: str, *parts: str) -> str:
    """Append path parts with '/' (works the same for local paths and object-store URIs)."""
    out = uri.rstrip("/")
    for part in parts:
        part = part.strip("/")
        if part:
            out = f"{out}/{part}"
    return out


def filesystem(uri: str):
    """(pyarrow FileSystem, path within it) for any supported location."""
    from pyarrow import fs

    if is_local(uri):
        return fs.LocalFileSystem(), normalize(uri)
    return fs.FileSystem.from_uri(uri)


def is_absolute(location: str) -> bool:
    """An absolute path or a URI with a scheme (not a location relative to some root)."""
    return not is_local(location) or location.startswith("file://") or os.path.isabs(location)


def relative_to(location: str, root: str) -> str:
    """`location` relative to `root` when it lies under it ("media/frames/ab/ab12.jpg"); else as is."""
    if not is_absolute(location):
        return location
    prefix = normalize(root).rstrip("/") + "/"
    if not is_local(location):
        return location[len(prefix):] if location.startswith(prefix) else location
    path = normalize(location)
    return path[len(prefix):] if path.startswith(prefix) else location


def resolve(location: str, root: str) -> str:
    """A location stored relative to `root` made whole again; absolute locations unchanged."""
    return location if is_absolute(location) else join(normalize(root), location)


class AlreadyExists(FileExistsError):
    """A conditional write found its object already there (another writer claimed the name)."""


def put_if_absent(uri: str, data: bytes) -> None:
    """Write `data` to the object `uri` only if no object has that name (one PUT with
    `If-None-Match: *`, atomic on S3 and S3-compatible stores); AlreadyExists when one has.

    The S3 client reads the usual `AWS_*` variables (`AWS_ENDPOINT_URL` for a store that is not
    AWS). Other object stores are refused: their writes here would not be conditional."""
    scheme, _, rest = uri.partition("://")
    if scheme not in ("s3", "s3a"):
        raise ValueError(f"{uri}: a conditional write needs an S3 (or S3-compatible) store")
    bucket, _, key = rest.partition("/")
    client = s3_client()
    try:
        client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
    except client.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("PreconditionFailed", "ConditionalRequestConflict") or \
                exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (409, 412):
            raise AlreadyExists(uri) from None
        raise


_CLIENTS: dict[tuple[str, ...], object] = {}


def s3_client():
    """One boto3 S3 client per endpoint and region (clients are thread-safe and slow to build)."""
    import boto3

    settings = tuple(os.environ.get(k, "") for k in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION",
                                                     "AWS_ACCESS_KEY_ID", "AWS_PROFILE"))
    if settings not in _CLIENTS:
        region = settings[1] or settings[2] or None
        _CLIENTS[settings] = boto3.session.Session().client("s3", region_name=region)
    return _CLIENTS[settings]
