"""Temporary files left by writers that were killed: swept before new work and by `prune`.

Parquet tables, derived media and checkpoints are written under `.tmp-<pid>-<hex>` names and
renamed into place; a file whose writer pid no longer runs is garbage. A Lance write killed before
its commit leaves data files no version references (Lance's own staging); they are removed only
when the caller knows no other process writes the store (`lance=True`).

On S3 nothing is written under a temporary name (a Parquet version is one conditional PUT, a
media file one upload), so what a killed writer leaves there is an upload it never completed
(invisible, but stored and billed) and Lance's unreferenced files: `sweep_store` aborts the
store's incomplete multipart uploads older than `UPLOAD_GRACE` and lets Lance remove
unreferenced files past its own safety window (7 days): other machines may be writing the same
store, and no lock reaches them.
"""

from __future__ import annotations

import datetime
import os
import re

from storage import uri as uris

_TEMP = re.compile(r"^\.tmp-(\d+)-[0-9a-f]+")
FOLDERS = ("tables", "media", "checkpoints")
UPLOAD_GRACE = datetime.timedelta(hours=1)  # an S3 upload started this long ago by a live writer is not swept


def sweep_store(root: str, *, lance: bool = False) -> list[str]:
    """Remove the temporary files of dead writers under a local store `root` (and, with `lance`,
    the unreferenced files of uncommitted Lance writes); the paths removed. On S3: incomplete
    uploads and old unreferenced Lance files (the module's docstring)."""
    if not uris.is_local(root):
        return sweep_object_store(root, lance=lance)
    base = uris.local_path(uris.normalize(root))
    removed = []
    for folder in FOLDERS:
        for directory, _, files in os.walk(os.path.join(base, folder)):
            for name in files:
                match = _TEMP.match(name)
                if match and not pid_alive(int(match.group(1))):
                    path = os.path.join(directory, name)
                    try:
                        os.unlink(path)
                        removed.append(path)
                    except FileNotFoundError:
                        pass
    if lance:
        removed += _sweep_lance(os.path.join(base, "lance"))
    return removed


def _sweep_lance(folder: str) -> list[str]:
    """Data files of uncommitted writes in every Lance table under `folder` (no version is removed)."""
    import lance

    if not os.path.isdir(folder):
        return []
    removed = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".lance"):
            continue
        path = os.path.join(folder, name)
        before = _data_files(path)
        dataset = lance.dataset(path)
        # Keeping every version and every tag, only files no version references are removed.
        dataset.cleanup_old_versions(retain_versions=10**9, older_than=datetime.timedelta(days=36_500),
                                     delete_unverified=True, error_if_tagged_old_versions=False)
        removed += sorted(before - _data_files(path))
    return removed


def sweep_object_store(root: str, *, lance: bool = False,
                       now: datetime.datetime | None = None) -> list[str]:
    """An S3 store's incomplete multipart uploads older than `UPLOAD_GRACE`, aborted (a younger one
    may be a live writer's on another machine); with `lance`, Lance's unreferenced files older than
    its safety window."""
    import lance as lance_module

    root = uris.normalize(root)
    if not root.startswith(("s3://", "s3a://")):
        return []
    bucket, _, prefix = root.split("://", 1)[1].partition("/")
    client = uris.s3_client()
    now = now or datetime.datetime.now(datetime.timezone.utc)
    removed = []
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/"):
        for upload in page.get("Uploads", []):
            if now - upload["Initiated"] > UPLOAD_GRACE:
                client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                removed.append(f"s3://{bucket}/{upload['Key']} (upload {upload['UploadId']})")
    if lance:
        fs, base = uris.filesystem(uris.join(root, "lance"))
        from pyarrow import fs as pafs

        for info in fs.get_file_info(pafs.FileSelector(base, allow_not_found=True)):
            if info.base_name.endswith(".lance"):
                dataset = lance_module.dataset(uris.join(root, "lance", info.base_name))
                stats = dataset.cleanup_old_versions(retain_versions=10**9, older_than=datetime.timedelta(days=36_500),
                                                     error_if_tagged_old_versions=False)
                removed += [f"{info.base_name}: {stats.old_versions} old versions, {stats.bytes_removed} bytes"] \
                    if stats.bytes_removed else []
    return removed


def _data_files(path: str) -> set[str]:
    found = set()
    for directory, _, files in os.walk(path):
        if os.sep + "_versions" in directory or os.sep + "_refs" in directory:
            continue
        found.update(os.path.join(directory, f) for f in files)
    return found


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
