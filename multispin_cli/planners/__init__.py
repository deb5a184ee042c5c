"""The planners: the bandwidth split, the homogeneous and heterogeneous plans, baselines, schedules.

Pure computation over :mod:`multispin_cli.model`; :mod:`multispin_cli.planners.report` is the entry point.
"""
