"""Bandwidth every user needs at every draft length 0..L_max, priced at many deadlines at once.

The heterogeneous planner prices the whole (user, length) table at every deadline it tries, so this
is its innermost loop. For smooth systems (a continuous band, Shannon rates) the table is kept in
the planner's own (K, L+1) layout with the fixed-SNR users' rows first and the power-limited ones
after: each block of users is priced as at most two contiguous pieces (a division, and the inverse
of :func:`multispin_cli.model.channel.power_limited_inverse`) and written straight into the users'
order, instead of a scatter through a flat index and a transpose; blocks keep the temporaries small
at city scale. :meth:`LevelPrices.window` prices only a few lengths per user (the city-scale path
of :mod:`multispin_cli.planners.price_sweep` looks near each user's best length). Whole resource blocks
and step rates keep :class:`multispin_cli.planners.split.Demand` (the same numbers, in the same layout).
"""

from __future__ import annotations

import numpy as np

from multispin_cli.model.channel import LN2, power_limited_inverse
from multispin_cli.model.goodput import compute_seconds, upload_bits
from multispin_cli.model.system import System
from multispin_cli.planners.split import Demand

BLOCK_ELEMENTS = 1 << 18  # (deadline, user, length) entries priced at once: temporaries of 2 MiB


class LevelPrices:
    """Need ``W_k(l, D)`` (Hz) of every user k at every length l, and dW/dD, for any deadlines D."""

    def __init__(self, system: System):
        self.users, self.levels = system.users, system.max_draft_length + 1
        lengths = np.broadcast_to(np.arange(self.levels), (self.users, self.levels))
        self._demand = None
        self._row_efficiency = None
        if not system.smooth or system.channel.power_limited.ndim != 1:
            self._demand = Demand(system, np.ascontiguousarray(lengths.T))
            return
        channel = system.channel
        pl = channel.power_limited
        order = np.argsort(pl, kind="stable")  # fixed-SNR users first
        self._fixed = int(np.count_nonzero(~pl))
        self._order = order
        self._pos = np.empty(self.users, dtype=np.intp)
        self._pos[order] = np.arange(self.users)  # each user's row in the fixed-SNR-first order
        self._identity = bool((order == np.arange(self.users)).all())
        rows = slice(None) if self._identity else order  # (users in order already: no gather through the transpose)
        column = np.arange(self.levels)[:, None]  # (lengths down a column: 4x faster than a (L+1, K) table)
        self._bits = np.ascontiguousarray(upload_bits(system, column).T[rows])
        self._device = np.ascontiguousarray(compute_seconds(system, column).T[rows])
        self._efficiency = channel.link_efficiency[order][: self._fixed, None]
        self._q = (channel.snr_bandwidth_hz[order][self._fixed:] / channel.link.gap)[:, None]
        self._cap = channel.link.cap
        self._sending = self._bits > 0
        self._sends_from_one = bool(self._sending[:, 1:].all())  # every user uploads at every length >= 1

    def at(self, deadlines, *, derivative: bool = False):
        """Needs (n, K, L+1) at each deadline; with ``derivative`` also dW/dD (Hz/s, at most 0;
        NaN where the need is finite but its slope is not), as :meth:`Demand.at_deadlines` gives."""
        d = np.atleast_1d(np.asarray(deadlines, dtype=float))
        if self._demand is not None:
            out = self._demand.at_deadlines(d, derivative=derivative)
            if not derivative:
                return np.ascontiguousarray(out.transpose(0, 2, 1))
            return tuple(np.ascontiguousarray(x.transpose(0, 2, 1)) for x in out)
        shape = (d.size, self.users, self.levels)
        need = np.empty(shape)
        slope = np.empty(shape) if derivative else None
        # In blocks of users: the temporaries stay small however many users there are (city scale).
        step = max(1, BLOCK_ELEMENTS // (d.size * self.levels))
        for start in range(0, self.users, step):
            rows = slice(start, min(self.users, start + step))
            block_need, block_slope = self._block(d, rows, derivative)
            out = rows if self._identity else self._order[rows]
            need[:, out] = block_need
            if derivative:
                slope[:, out] = block_slope
        return (need, slope) if derivative else need

    def _block(self, d: np.ndarray, rows: slice, derivative: bool):
        """Needs and slopes of the users ``rows`` of the fixed-SNR-first order."""
        slack = d[:, None, None] - self._device[None, rows]
        sending = self._sending[rows]
        # Level 0 (and a draft that does not use the uplink) sends nothing: it needs no bandwidth,
        # from the end of its device time on; a draft that sends needs a positive slack.
        late = (slack < 0) | ((slack == 0) & sending)
        f = max(0, min(self._fixed - rows.start, rows.stop - rows.start))  # fixed-SNR rows in the block
        need = np.empty(slack.shape)
        slope = np.empty(slack.shape) if derivative else None
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            rate = np.divide(self._bits[rows], slack, out=np.zeros(slack.shape), where=sending)
            np.divide(rate[:, :f], self._efficiency[rows.start:rows.start + f], out=need[:, :f])
            d_rate = None
            if f < need.shape[1]:
                q = self._q[max(0, rows.start - self._fixed):rows.stop - self._fixed]
                need[:, f:], d_rate = power_limited_inverse(rate[:, f:], q, self._cap, derivative=derivative)
            need[late] = np.inf
            if derivative:
                # dW/dD = dW/dR * dR/dD with dR/dD = -R / slack (R = bits / slack).
                np.divide(need[:, :f], slack[:, :f], out=slope[:, :f])
                if d_rate is not None:
                    np.multiply(d_rate, rate[:, f:], out=slope[:, f:])
                    slope[:, f:] /= slack[:, f:]
                np.negative(slope, out=slope)
                slope[late] = -np.inf
                np.copyto(slope, 0.0, where=~sending)  # nothing sent: the need stays 0
                slope[np.isfinite(need) & ~np.isfinite(slope)] = np.nan
        return need, slope

    def window(self, deadline: float, users: np.ndarray, first: np.ndarray, width: int, *, derivative: bool = True):
        """Needs and dW/dD (each (n, width); None without ``derivative``) of ``users`` at the lengths
        ``first .. first + width - 1``, at one deadline (or one per user, (n, 1)): a few lengths per
        user where :meth:`at` prices them all (large cells only look near each user's best length).
        Lengths beyond L_max need ``inf``. Smooth systems only."""
        return self._window(deadline, *self._window_index(users, first, width), derivative=derivative)

    def terms(self, deadline, users: np.ndarray, first: np.ndarray, width: int, values: np.ndarray, lam: float):
        """``values[user, l] - lam W(l, D)`` and its derivative in D (>= 0) at the windows of
        :meth:`window`: -inf (slope 0) where a length is out of reach. ``values`` is (K, L+1) in the
        users' order, ``lam >= 0`` the band's price. One pass over the window for the planner's
        innermost loop (the same numbers as pricing the window and subtracting)."""
        rows, flat, beyond, sends = self._window_index(users, first, width)
        need, slope = self._window(deadline, rows, flat, beyond, sends)
        # The values' entries: the needs' flat entries moved from each user's row to its own.
        own = flat if self._identity else flat + ((users - rows) * self.levels)[:, None]
        value = values.ravel().take(own)
        finite = np.isfinite(need)
        with np.errstate(invalid="ignore"):
            need *= lam
            value -= need  # -inf where the need is inf
            slope *= -lam
        if not finite.all():
            np.copyto(value, -np.inf, where=~finite)
            np.copyto(slope, 0.0, where=~finite)
        return value, slope

    def reach(self, users: np.ndarray, levels: np.ndarray):
        """Device time t of each (user, length) entry, and the deadline up to which its need is
        infinite: t, plus ``bits ln 2 / Q`` for a power-limited user (it carries less than Q / ln 2
        bit/s on any band). Smooth systems only."""
        if self._demand is not None:
            raise ValueError("reach is known for smooth systems only")
        rows = users if self._identity else self._pos[users]
        flat = rows * self.levels + levels
        device = self._device.ravel().take(flat)
        reach = device.copy()
        limited = np.flatnonzero(rows >= self._fixed)
        if limited.size:
            bits = self._bits.ravel().take(flat[limited])
            reach[limited] += bits * LN2 / self._q[rows[limited] - self._fixed, 0]
        return device, reach

    def _window_index(self, users: np.ndarray, first: np.ndarray, width: int):
        """Rows in the prices' order, flat indices into the (K, L+1) tables, lengths past L_max, and
        whether every entry uploads (no length 0, no user off the uplink)."""
        if self._demand is not None:
            raise ValueError("length windows are priced for smooth systems only")
        rows = users if self._identity else self._pos[users]
        # Column by column: an (n, 1) against (n, width) broadcast runs numpy's inner loop once per
        # row, about ten times slower than these strided columns.
        levels = np.empty((first.size, width), dtype=np.intp)
        beyond = np.empty((first.size, width), dtype=bool)
        base = rows * self.levels
        top = self.levels - 1
        for step in range(width):
            level = first + step
            np.greater(level, top, out=beyond[:, step])
            np.minimum(level, top, out=level)
            np.add(level, base, out=levels[:, step])
        sends = self._sends_from_one and (first.size == 0 or int(first.min()) >= 1)
        return rows, levels, beyond, sends

    def _window(self, deadline, rows: np.ndarray, flat: np.ndarray, beyond: np.ndarray, sends: bool,
                derivative: bool = True):
        """Needs and dW/dD (None without ``derivative``) at the flat entries (rows and entries from
        :meth:`_window_index`)."""
        if self._row_efficiency is None:  # per row: the fixed-SNR users' efficiency (1 for the others)
            self._row_efficiency = np.concatenate([self._efficiency[:, 0], np.ones(self.users - self._fixed)])
        bits, device = self._bits.ravel().take(flat), self._device.ravel().take(flat)
        if np.ndim(deadline):  # one per row (n, 1): by columns, as in _window_index
            slack = np.empty(device.shape)
            for step in range(device.shape[1]):
                np.subtract(deadline[:, 0], device[:, step], out=slack[:, step])
        else:
            slack = deadline - device
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if sends:  # (the planner's windows: every entry uploads, none stays at 0 from its device time on)
                late = slack <= 0
                late |= beyond
                rate = bits / slack
            else:
                sending = bits > 0
                late = (slack < 0) | ((slack == 0) & sending) | beyond
                rate = np.divide(bits, slack, out=np.zeros(slack.shape), where=sending)
            need = np.empty(rate.shape)  # fixed-SNR users; the others below
            efficiency = self._row_efficiency[rows]
            for step in range(rate.shape[1]):  # (by columns, as in _window_index)
                np.divide(rate[:, step], efficiency, out=need[:, step])
            slope = need / slack if derivative else None
            if bool((rows[1:] > rows[:-1]).all()):
                # Rows in order (the usual case): the power-limited ones are a tail, priced in place.
                limited = slice(int(np.searchsorted(rows, self._fixed)), None)
            else:
                limited = np.flatnonzero(rows >= self._fixed)
            q = self._q[rows[limited] - self._fixed]
            if q.size:
                r = rate[limited]
                need[limited], d_rate = power_limited_inverse(r, q, self._cap, derivative=derivative)
                if derivative:
                    slope[limited] = d_rate * r / slack[limited]
            if not derivative:
                if late.any():
                    np.copyto(need, np.inf, where=late)
                return need, None
            np.negative(slope, out=slope)
            # (np.copyto: boolean-mask assignment is several times slower; a masked copy only where
            # the mask holds anything: near the plan's deadline most windows have no late entry)
            if late.any():
                np.copyto(need, np.inf, where=late)
                np.copyto(slope, -np.inf, where=late)
            if not sends:
                np.copyto(slope, 0.0, where=~(sending | late))
            # A finite need with no finite slope: only a power-limited user's (a rate at the edge of
            # its reach); a fixed-SNR user's slope W / slack is finite wherever its need is.
            part = limited if isinstance(limited, slice) else slice(None)
            edge = np.isfinite(need[part])
            edge &= ~np.isfinite(slope[part])
            if edge.any():
                np.copyto(slope[part], np.nan, where=edge)
        return need, slope
