"""Baselines reported beside every plan (docs/model.md 4)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from multispin_cli.model.channel import Channel
from multispin_cli.model.goodput import evaluate
from multispin_cli.model.plan import Plan
from multispin_cli.model.system import System
from multispin_cli.planners.homogeneous import alike_best_length, best_common_length
from multispin_cli.planners.resource_blocks import equal_blocks

FIXED_DRAFT_LENGTH = 4  # the heterogeneity-agnostic default of docs/model.md 4 (and common engine default)


def autoregressive(system: System) -> Plan:
    """No speculation: the target decodes one token per user per round, the uplink idles."""
    zeros = np.zeros(system.users, dtype=int)
    return Plan("autoregressive", evaluate(system, zeros, np.zeros(system.users)), draft_length=0)


def _equal_split(system: System, length: int, name: str) -> Plan:
    lengths = np.full(system.users, length, dtype=int)
    if system.resource_block_hz is not None:
        bandwidth = equal_blocks(system, system.users if length > 0 else 0)
    else:
        bandwidth = np.full(system.users, system.bandwidth_hz / system.users if length > 0 else 0.0)
    return Plan(name, evaluate(system, lengths, bandwidth), draft_length=length)


def fixed_equal(system: System, length: int = FIXED_DRAFT_LENGTH) -> Plan:
    """Every user drafts ``length`` tokens (capped at L_max) over an equal share ``W / K``."""
    return _equal_split(system, min(length, system.max_draft_length), "fixed_equal")


def mean_user(system: System) -> Plan:
    """Plan for one averaged user, then apply its length and an equal split to the real users.

    The averaged user has the mean per-position acceptance, the mean device times and the mean SNR
    in dB that the users would see on an equal share ``W / K``: what a planner that knows only the
    cell's averages would do.
    """
    k = system.users
    snr = system.channel.snr_at(system.bandwidth_hz / k)
    mean_snr = 10.0 ** np.mean(np.log10(np.maximum(snr, np.finfo(float).tiny)))
    accept = system.accept_prob.mean(axis=0)
    tau, overhead = system.draft_s_per_token.mean(), system.draft_overhead_s.mean()
    length = alike_best_length(system, accept, tau, overhead, mean_snr)
    if length is None:  # K copies of the averaged user, planned as any cell
        average = replace(
            system,
            accept_prob=np.broadcast_to(accept, system.accept_prob.shape).copy(),
            draft_s_per_token=np.full(k, tau),
            draft_overhead_s=np.full(k, overhead),
            channel=Channel.fixed_snr(np.full(k, mean_snr), system.channel.link),
        )
        length = best_common_length(average)
    return _equal_split(system, length, "mean_user")


def all_baselines(system: System) -> dict[str, Plan]:
    """The three baselines of docs/model.md 4, by name, in report order."""
    return {plan.name: plan for plan in (autoregressive(system), fixed_equal(system), mean_user(system))}
