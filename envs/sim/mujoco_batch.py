"""Step many MuJoCo worlds in one call, on a small pool of threads.

Each world is a :class:`~taxbench.envs.sim.mujoco_sim.MujocoSim` that keeps its own ``MjData``, so
everything the robot, task and cost terms read after a step is exactly what a lone env would read.
A call sets every world's controls in the calling thread, then hands the worlds out, one at a time, to
``nthread`` threads (the caller's included); each advances its world with :meth:`MujocoSim.advance`
(``mj_step`` with ``nstep=frame_skip``), which releases the GIL while MuJoCo runs, so the worlds step in
parallel on separate cores and a helper holds the GIL only to take the next world and report the last.

Stepping in place with ``mj_step`` keeps the solver's warm start in each ``MjData`` from one control
step to the next, so the result is bit-identical to stepping each env on its own (``mujoco.rollout``
clears the warm start every call and drifts by about 1e-6: see ``NOTES.md``). Worlds are handed out
from a shared iterator, so a busy core simply takes fewer of them.
"""

from __future__ import annotations

import queue
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from taxbench.envs.sim.mujoco_sim import MujocoSim


class MujocoBatchStepper:
    """Advance a fixed set of MuJoCo worlds one control step each, in parallel.

    A helper thread whose ``mj_step`` has returned needs the GIL for a few µs (report the world, take the
    next) while the caller is running Python on the worlds already stepped. CPython makes such a thread wait
    for the switch interval (5 ms by default) before it asks the running thread to hand the GIL over, so
    during a threaded call the interval is lowered to ``switch_interval_s`` and restored afterwards. In
    interleaved A/B runs on Ant (2 threads) it raised the vector env's rate by 0-10 % (N = 32: 1.27 → 1.35,
    1.37 → 1.51, 1.36 → 1.46 × one world's raw physics; N = 16 and 64: unchanged) and never lowered it.
    Results do not depend on it.

    Args:
        sims: The worlds; each keeps its own data (the model may be shared) and is stepped ``frame_skip`` physics
            steps.
        nthread: Threads that step worlds, the calling thread included (1 steps them in a plain loop).
        switch_interval_s: Interpreter switch interval while worlds are stepped on threads, s (see above);
            None leaves it alone.

    Raises:
        ValueError: if ``sims`` is empty, holds something other than a ``MujocoSim``, ``nthread < 1`` or
            ``switch_interval_s <= 0``.
    """

    def __init__(self, sims: Sequence[MujocoSim], nthread: int = 2, switch_interval_s: float | None = 5e-6) -> None:
        if not sims:
            raise ValueError("MujocoBatchStepper needs at least one world")
        wrong = [type(sim).__name__ for sim in sims if not isinstance(sim, MujocoSim)]
        if wrong:
            raise ValueError(f"batched stepping needs MuJoCo worlds (MujocoSim), got {sorted(set(wrong))}")
        if isinstance(nthread, bool) or not isinstance(nthread, int) or nthread < 1:
            raise ValueError(f"nthread must be an integer >= 1, got {nthread!r}")
        if switch_interval_s is not None and not switch_interval_s > 0:
            raise ValueError(f"switch_interval_s must be > 0 or None, got {switch_interval_s!r}")
        self.switch_interval_s = switch_interval_s
        self.sims = tuple(sims)
        self.nthread = min(nthread, len(self.sims))
        #: Threads a call uses, 1..nthread (the vector env lowers it where threads do not pay).
        self.active_threads = self.nthread
        self._pool = ThreadPoolExecutor(self.nthread - 1, "mujoco-batch") if self.nthread > 1 else None

    @property
    def num_worlds(self) -> int:
        """Number of worlds."""
        return len(self.sims)

    def step(self, ctrls: Sequence[np.ndarray] | np.ndarray, ids: Sequence[int] | None = None) -> None:
        """Apply ``ctrls[k]`` to world ``ids[k]`` and advance each of those worlds one control step.

        Args:
            ctrls: Actuator controls, one row per stepped world (units of each actuator's control).
            ids: The worlds to step, in the order of ``ctrls``; None steps every world.

        Raises:
            ValueError: if the number of control rows does not match the number of worlds stepped.
        """
        for _ in self.step_iter(ctrls, ids):
            pass

    def step_iter(self, ctrls: Sequence[np.ndarray] | np.ndarray, ids: Sequence[int] | None = None) -> Iterator[int]:
        """Like :meth:`step`, yielding each position ``k`` (into ``ctrls``) as soon as its world has stepped.

        While the caller works on a yielded world (rewards, costs, observation: Python, holding the GIL), the
        helper threads go on stepping other worlds. When no stepped world is waiting, the calling thread steps
        the next world itself, so it never idles while worlds are left. Consume the iterator to the end.

        Raises:
            ValueError: if the number of control rows does not match the number of worlds stepped.
        """
        sims = self.sims if ids is None else [self.sims[i] for i in ids]
        n = len(sims)
        if len(ctrls) != n:
            raise ValueError(f"got {len(ctrls)} control rows for {n} worlds")
        if self._pool is None or n < 2 or self.active_threads < 2:
            for k in range(n):
                sims[k].step(ctrls[k])
                yield k
            return
        yield from self._step_threaded(sims, ctrls)

    def _step_threaded(self, sims: Sequence[MujocoSim], ctrls: Sequence[np.ndarray] | np.ndarray) -> Iterator[int]:
        """:meth:`step_iter` on ``active_threads`` threads (the caller's included)."""
        n = len(sims)
        for sim, ctrl in zip(sims, ctrls, strict=True):  # here, so the helpers hold the GIL as little as possible
            sim.set_control(ctrl)
        work = iter(range(n))  # shared by every thread: ``next`` on a range iterator is atomic under the GIL
        stepped: queue.SimpleQueue[int] = queue.SimpleQueue()

        def helper() -> None:
            try:
                for k in work:
                    sims[k].advance()  # mj_step releases the GIL
                    stepped.put(k)
            except BaseException:
                stepped.put(-1)  # wake the caller; the error surfaces from ``future.result()``
                raise

        pool = self._pool
        if pool is None:
            raise RuntimeError("the stepper is closed")
        previous_interval = sys.getswitchinterval()
        if self.switch_interval_s is not None:
            sys.setswitchinterval(self.switch_interval_s)
        try:
            helpers = [pool.submit(helper) for _ in range(min(self.active_threads, n) - 1)]
            try:
                for _ in range(n):
                    k = self._next_stepped(sims, work, stepped)
                    if k < 0:
                        break
                    yield k
            finally:
                for _ in work:  # an abandoned iteration hands out no more worlds
                    pass
                for future in helpers:
                    future.result()
        finally:
            sys.setswitchinterval(previous_interval)

    @staticmethod
    def _next_stepped(sims: Sequence[MujocoSim], work: Iterator[int], stepped: queue.SimpleQueue[int]) -> int:
        """A world a helper has stepped, else the next free world stepped here, else wait for a helper (-1: failed)."""
        try:
            return stepped.get_nowait()
        except queue.Empty:
            pass
        k = next(work, -1)
        if k < 0:
            return stepped.get()  # every world is taken: wait for a helper (releases the GIL)
        sims[k].advance()
        return k

    def close(self) -> None:
        """Stop the helper threads (idempotent)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
