"""Where the shipped TOML files live: example profiles, the model catalog, the hardware catalog.

In a source checkout (or an editable install) they are the repository's ``profiles/`` folder; in
an installed wheel they are package data under ``multispin_cli/profiles``. Both look the same.
"""

from __future__ import annotations

from pathlib import Path


def profiles_dir() -> Path:
    """The folder holding the shipped profiles, ``models/`` and ``hardware/``."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "profiles").is_dir():
        return root / "profiles"
    from importlib.resources import files  # here: a checkout never needs it (and it loads tempfile)

    return Path(str(files("multispin_cli") / "profiles"))


def shipped_profiles() -> dict[str, Path]:
    """The shipped example profiles by name (file stem), sorted by name."""
    return {p.stem: p for p in sorted(profiles_dir().glob("*.toml"))}


def profile_summary(path: Path, width: int = 0) -> str:
    """The first sentence of a profile's leading comment block (what it shows), or ''; with ``width``,
    cut at a word to at most that many characters."""
    words: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if not text:
            break
        words += text.split()
    summary = " ".join(words)
    end = summary.find(". ")
    summary = summary[: end + 1] if end >= 0 else summary
    if width and len(summary) > width:
        summary = summary[: width - 3].rsplit(" ", 1)[0].rstrip(",;:") + "..."
    return summary


def resolve_profile(given: str | Path) -> Path:
    """The file a PROFILE argument names: the path itself when it exists, else the shipped profile of
    that name (``campus-32-mixed`` or ``campus-32-mixed.toml``), else the path (so that reading it
    reports "no such file")."""
    path = Path(given)
    if path.exists() or len(path.parts) != 1:
        return path
    name = path.name[: -len(".toml")] if path.name.endswith(".toml") else path.name
    return shipped_profiles().get(name, path)
