"""Plan time in resource-block mode, against the continuous split of the same cell in the same run.

Run: ``python benchmarks/resource_blocks_speed.py`` (``--users 1000 --repeats 3``). For a busy cell
(:func:`multispin_cli.model.synthetic.busy_cell`: half fixed-SNR, half power-limited users, 200 kHz
of band per user) on whole 180 kHz blocks (15 kHz spacing, one block at least per drafting user),
under each rate model, prints the homogeneous and heterogeneous planners' times (median of the
repeats), the heterogeneous time as a multiple of the peer (the heterogeneous planner on the
continuous Shannon split of the same band, measured in the same run: multiply by the peer's quiet
time to estimate a quiet machine's), the heterogeneous goodput, its gap to its proven bound, and
the continuous split's goodput under the same rate model (an upper bound on the whole-block plan).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
from timing import timed  # benchmarks/timing.py (run as python benchmarks/NAME.py)

from multispin_cli.model.link import LinkModel
from multispin_cli.model.synthetic import busy_cell
from multispin_cli.planners.heterogeneous import plan_heterogeneous
from multispin_cli.planners.homogeneous import plan_homogeneous

BLOCK_HZ = 180e3
LINKS = {"shannon": LinkModel(), "shannon-gap": LinkModel("shannon-gap", 10 ** 0.2, 5.5547),
         "nr-cqi": LinkModel("nr-cqi", 10 ** 0.2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cell = busy_cell(np.random.default_rng(7), args.users)
    blocks = int(cell.bandwidth_hz // BLOCK_HZ)
    peer_cell = replace(cell, bandwidth_hz=blocks * BLOCK_HZ)
    peer_hom = plan_homogeneous(peer_cell)
    peer_s, _ = timed(lambda: plan_heterogeneous(peer_cell, start=peer_hom), args.repeats)
    print(f"{args.users} users, {blocks} blocks of {BLOCK_HZ / 1e3:g} kHz, min 1 per drafting user; "
          f"peer: the continuous Shannon split's heterogeneous planner, {peer_s:.3f} s in this run")
    print(f"{'rate model':<12} {'hom s':>7} {'het s':>7} {'vs peer':>7} {'het tok/s':>10} {'bound gap':>9} "
          f"{'cont tok/s':>10} {'cont gap':>8}")
    for name, link in LINKS.items():
        continuous = replace(peer_cell, channel=cell.channel.with_link(link))
        system = replace(continuous, resource_block_hz=BLOCK_HZ,
                         min_resource_blocks=np.ones(args.users, dtype=int))
        hom_s, hom = timed(lambda: plan_homogeneous(system), args.repeats)
        het_s, het = timed(lambda: plan_heterogeneous(system, start=hom), args.repeats)
        cont = plan_heterogeneous(continuous)
        g = het.goodput_tokens_per_s
        print(f"{name:<12} {hom_s:7.3f} {het_s:7.3f} {het_s / peer_s:6.2f}x {g:10.1f} "
              f"{het.upper_bound_tokens_per_s / g - 1:9.2%} {cont.goodput_tokens_per_s:10.1f} "
              f"{cont.goodput_tokens_per_s / g - 1:8.2%}")


if __name__ == "__main__":
    main()
