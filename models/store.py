"""The content-addressed artifact store under the state dir.

Layout (``<state_dir>/models/``):

- ``<sha256>.onnx``: the model, named by the SHA-256 of its bytes;
- ``<sha256>.json``: its metadata (feature names and order, schema hash, label
  definition, data range, library versions, metrics);
- ``<sha256>.report/``: the training report (``report.html`` and its PNG plots).

Files are written to a temporary name and renamed, so a reader never sees half an
artifact; writing bytes that are already stored is a no-op. Reading checks the hash,
so a corrupted or swapped file is refused rather than served.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from models.errors import RegistryError
from streams.champions import read_checked, sha256_of

__all__ = ["ArtifactStore", "sha256_of"]


def _write_atomically(path: Path, data: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class ArtifactStore:
    """ONNX artifacts and their metadata, named by content."""

    def __init__(self, root: Path) -> None:
        """Keep artifacts in ``root`` (``<state_dir>/models``), created on first write."""
        self.root = root

    def onnx_path(self, sha256: str) -> Path:
        """Return where the artifact ``sha256`` lives."""
        return self.root / f"{sha256}.onnx"

    def metadata_path(self, sha256: str) -> Path:
        """Return where the metadata of ``sha256`` lives."""
        return self.root / f"{sha256}.json"

    def report_dir(self, sha256: str) -> Path:
        """Return the report directory of ``sha256``."""
        return self.root / f"{sha256}.report"

    def relative_uri(self, sha256: str) -> str:
        """Return the artifact's location relative to the state dir (what the registry row records)."""
        return f"models/{sha256}.onnx"

    def put(self, onnx_bytes: bytes, metadata: dict[str, Any]) -> str:
        """Store an artifact and its metadata; return its SHA-256."""
        self.root.mkdir(parents=True, exist_ok=True)
        digest = sha256_of(onnx_bytes)
        path = self.onnx_path(digest)
        if not path.exists() or sha256_of(path.read_bytes()) != digest:
            _write_atomically(path, onnx_bytes)
        document = {**metadata, "artifact_sha256": digest}
        _write_atomically(self.metadata_path(digest), json.dumps(document, indent=2, sort_keys=True).encode())
        return digest

    def read(self, sha256: str) -> bytes:
        """Return the artifact's bytes, checked against its name.

        Raises:
            RegistryError: when the file is missing (another host's state dir?).
            DataQualityError: when its content no longer matches its hash.
        """
        path = self.onnx_path(sha256)
        try:
            return read_checked(path, sha256)
        except FileNotFoundError as exc:
            raise RegistryError(f"artifact {path} is missing: the registry row points to another state dir?") from exc

    def metadata(self, sha256: str) -> dict[str, Any]:
        """Return the metadata stored beside ``sha256`` (empty when it is missing)."""
        path = self.metadata_path(sha256)
        if not path.exists():
            return {}
        loaded: dict[str, Any] = json.loads(path.read_text())
        return loaded
