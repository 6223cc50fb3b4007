"""Step many MuJoCo worlds in one call, on a small pool of threads.

Each world is a :class:`~taxbench.envs.sim.mujoco_sim.MujocoSim` that keeps its own ``MjData``, so
everything the robot, task and cost terms read after a step is exactly what a lone env would read.
A call hands the worlds out, one at a time, to ``nthread`` threads (the caller's included); each
advances its world with :meth:`MujocoSim.step` (``mj_step`` with ``nstep=frame_skip``), which releases
the GIL while MuJoCo runs, so the worlds step in parallel on separate cores.

Stepping in place with ``mj_step`` keeps the solver's warm start in each ``MjData`` from one control
step to the next, so the result is bit-identical to stepping each env on its own (``mujoco.rollout``
clears the warm start every call and drifts by about 1e-6: see ``NOTES.md``). Worlds are handed out
from a shared iterator, so a busy core simply takes fewer of them.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from taxbench.envs.sim.mujoco_sim import MujocoSim


class MujocoBatchStepper:
    """Advance a fixed set of MuJoCo worlds one control step each, in parallel.

    Args:
        sims: The worlds; each keeps its own model and data and is stepped ``frame_skip`` physics steps.
        nthread: Threads that step worlds, the calling thread included (1 steps them in a plain loop).

    Raises:
        ValueError: if ``sims`` is empty, holds something other than a ``MujocoSim``, or ``nthread < 1``.
    """

    def __init__(self, sims: Sequence[MujocoSim], nthread: int = 2) -> None:
        if not sims:
            raise ValueError("MujocoBatchStepper needs at least one world")
        wrong = [type(sim).__name__ for sim in sims if not isinstance(sim, MujocoSim)]
        if wrong:
            raise ValueError(f"batched stepping needs MuJoCo worlds (MujocoSim), got {sorted(set(wrong))}")
        if isinstance(nthread, bool) or not isinstance(nthread, int) or nthread < 1:
            raise ValueError(f"nthread must be an integer >= 1, got {nthread!r}")
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
        work = iter(range(n))  # shared by every thread: ``next`` on a range iterator is atomic under the GIL
        stepped: queue.SimpleQueue[int] = queue.SimpleQueue()

        def helper() -> None:
            try:
                for k in work:
                    sims[k].step(ctrls[k])  # mj_step releases the GIL
                    stepped.put(k)
            except BaseException:
                stepped.put(-1)  # wake the caller; the error surfaces from ``future.result()``
                raise

        helpers = [self._pool.submit(helper) for _ in range(min(self.active_threads, n) - 1)]
        try:
            for _ in range(n):
                k = self._next_stepped(sims, ctrls, work, stepped)
                if k < 0:
                    break
                yield k
        finally:
            for _ in work:  # an abandoned iteration hands out no more worlds
                pass
            for future in helpers:
                future.result()

    @staticmethod
    def _next_stepped(sims: Sequence[MujocoSim], ctrls: Sequence[np.ndarray] | np.ndarray, work: Iterator[int],
                      stepped: queue.SimpleQueue[int]) -> int:
        """A world a helper has stepped, else the next free world stepped here, else wait for a helper (-1: failed)."""
        try:
            return stepped.get_nowait()
        except queue.Empty:
            pass
        k = next(work, -1)
        if k < 0:
            return stepped.get()  # every world is taken: wait for a helper (releases the GIL)
        sims[k].step(ctrls[k])
        return k

    def close(self) -> None:
        """Stop the helper threads (idempotent)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
