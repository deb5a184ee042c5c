"""multispin: plan draft lengths and uplink bandwidth for multi-user speculative decoding.

The library is usable without the CLI: load a profile with :func:`multispin_cli.documents.profile.load_profile`,
plan with :func:`multispin_cli.planners.report.plan_report`, and read the numbers off the returned dataclasses.
"""

__version__ = "0.1.0"
