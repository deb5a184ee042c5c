"""Where a sweep keeps finished chunks so that `--resume` can skip them.

With ``--output FILE`` every finished chunk is written, atomically, to ``FILE.parts/`` as
``cells-START-STOP.json`` (its rows and invalid cells), beside ``run.json`` which records a
fingerprint of the run (base profile, the contents of the fragments and devices file it reads,
swept keys and values, scenarios, mode). A resumed run with the
same fingerprint reads the chunk files whose cell range matches one of its chunks and computes only
the others; a different run refuses to resume. When the output file has been written the folder is
removed; without ``--resume`` a leftover folder is cleared first.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from multispin_cli.documents.output import write_atomic
from multispin_cli.errors import InputError


def fingerprint(description: dict) -> str:
    """A stable hash of a run's description (plain JSON data)."""
    text = json.dumps(description, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ChunkStore:
    """The ``FILE.parts/`` folder of one run."""

    def __init__(self, output: str | Path, run_id: str, *, resume: bool):
        self.folder = Path(f"{output}.parts")
        self.run_id = run_id
        marker = self.folder / "run.json"
        if resume and self.folder.is_dir():
            try:
                recorded = json.loads(marker.read_text(encoding="utf-8")).get("fingerprint")
            except (OSError, ValueError):
                recorded = None
            if recorded != run_id:
                raise InputError(f"cannot resume: {self.folder} holds chunks of a different run (other profile, "
                                 "input files, keys, values or options); run again without --resume", key="--resume")
        else:
            self.clear()
            try:
                self.folder.mkdir()
            except OSError as exc:
                raise InputError(f"cannot create {self.folder}: {exc.strerror}", key="--output") from None
            write_atomic(marker, json.dumps({"fingerprint": run_id}) + "\n")

    def _file(self, start: int, stop: int) -> Path:
        return self.folder / f"cells-{start:09d}-{stop:09d}.json"

    def load(self, start: int, stop: int) -> dict | None:
        """A finished chunk's content, or None."""
        try:
            return json.loads(self._file(start, stop).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # unreadable: compute it again

    def save(self, start: int, stop: int, content: dict) -> None:
        write_atomic(self._file(start, stop), json.dumps(content, allow_nan=True) + "\n")

    def clear(self) -> None:
        """Remove the folder (after the output is written, or before a fresh run)."""
        if self.folder.is_dir():
            shutil.rmtree(self.folder)
