"""Set up a sweep from command-line text: read the base profile, parse `--set`, build the job."""

from __future__ import annotations

from pathlib import Path

from multispin_cli.analysis.scenarios import ScenarioSpec
from multispin_cli.analysis.sweep import SweepGrid
from multispin_cli.documents.files import digests, recording_reads
from multispin_cli.documents.overrides import check_distinct, file_device_names, parse_set
from multispin_cli.documents.profile import profile_from_data, read_toml
from multispin_cli.errors import InputError
from multispin_cli.execution.cells import SweepJob

MAX_CELLS = 10_000_000


def sweep_job(profile: Path, sets: list[str], *, mode: str = "both",
              scenarios: ScenarioSpec | None = None) -> SweepJob:
    """The job for ``multispin sweep``: the base profile is checked first, then every ``--set``."""
    with recording_reads() as reads:
        data = read_toml(Path(profile))
        profile_from_data(data, profile)  # the base itself must be valid
    if scenarios is not None and not any(isinstance(e, dict) for e in data.get("devices") or []):
        raise InputError("--scenarios redraws the [[devices]] users, and this profile has none (users of a "
                         "devices_file keep their channel and acceptance)", key="--scenarios")
    names = file_device_names(data, profile) if sets else ()
    axes = tuple(parse_set(text, data, names) for text in sets)
    check_distinct(axes)
    grid = SweepGrid(axes, scenarios.count if scenarios is not None else 0)
    if len(grid) > MAX_CELLS:
        raise InputError(f"{len(grid):,} cells is more than {MAX_CELLS:,}", key="--set")
    # What the cells read besides the profile's own text (fragments, a devices file): a resumed run
    # must not reuse rows computed from other contents.
    return SweepJob(data, str(profile), grid, mode, scenarios, inputs=digests(reads))


def plan_names(mode: str) -> list[str]:
    """The plans and baselines a sweep reports in this mode."""
    planned = {"homogeneous": ["homogeneous"], "heterogeneous": ["heterogeneous", "homogeneous"],
               "both": ["homogeneous", "heterogeneous"]}[mode]
    return planned + ["autoregressive", "fixed_equal", "mean_user"]
