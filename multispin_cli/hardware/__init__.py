"""`multispin profile-hardware`: measure or estimate draft and verification timings.

The pieces, from the bottom up:

- :mod:`~multispin_cli.hardware.models`: the model catalog and Hugging Face ``config.json`` parsing
  into a frozen :class:`~multispin_cli.hardware.models.ModelShape`;
- :mod:`~multispin_cli.hardware.costs`: FLOP and byte counts of one forward pass, per operation;
- :mod:`~multispin_cli.hardware.roofline`: the hardware catalog and roofline times;
- :mod:`~multispin_cli.hardware.fit`: the affine fit of ``T_v(N)`` with R^2 and the monotone table;
- :mod:`~multispin_cli.hardware.machine`: what the local machine is;
- :mod:`~multispin_cli.hardware.numpy_backend` / :mod:`~multispin_cli.hardware.torch_backend`:
  decoder forward passes at exact shapes, timed;
- :mod:`~multispin_cli.hardware.profiling`: one run from plain arguments to frozen results;
- :mod:`~multispin_cli.hardware.fragment` and :mod:`~multispin_cli.hardware.view`: the TOML/JSON
  fragment that a deployment profile includes, and the rich tables.

Inside, everything is SI (seconds, bytes, FLOP); names at the boundary carry their unit.
"""
