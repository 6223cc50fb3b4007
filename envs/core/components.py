"""The three parts a :class:`~taxbench.envs.core.env.SafeRobotEnv` is composed of.

A ``Robot`` maps actions to actuator controls and reports its own state; a ``Task`` places goals
and hazards, pays ``reward_<term>`` terms and says when the episode succeeds or ends; a
``CostTerm`` turns one physical quantity into ``measure_<term>`` (SI units) and the per-step
constraint cost ``cost_<term>``. None of them steps the physics: the env does, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from gymnasium import spaces

from taxbench.envs.core.arrays import array_namespace

if TYPE_CHECKING:
    from taxbench.envs.core.sim_api import Marker, Sim
    from taxbench.envs.costs.thresholds import Threshold


class StepContext:
    """What one control step did, shared by the task and every cost term.

    A plain ``__slots__`` class built once per step (a dataclass with a cached property cost ~5 µs a step).

    Attributes:
        sim: The physics world, after the step.
        robot: The robot being controlled.
        action: The (validated, clipped) action applied this step.
        dt: Control period, s.
        root_before: Robot root position before the step, m, shape (3,).
        root_after: Robot root position after the step, m, shape (3,).
        root_velocity: Average root velocity over the step, m/s, shape (3,) (finite difference of exact positions).
        cache: Values one term computes and others reuse within this step (e.g. the contact list).
    """

    __slots__ = ("action", "cache", "dt", "robot", "root_after", "root_before", "root_velocity", "sim")

    def __init__(
        self, sim: Sim, robot: Robot, action: np.ndarray, dt: float, root_before: np.ndarray, root_after: np.ndarray
    ) -> None:
        self.sim, self.robot, self.action, self.dt = sim, robot, action, dt
        self.root_before, self.root_after = root_before, root_after
        self.root_velocity = (root_after - root_before) / dt
        self.cache: dict[str, object] = {}


class Robot(Protocol):
    """A robot: its model, action mapping, observation and posture checks."""

    name: str
    root_body: str

    def build_sim(self, markers: Sequence[Marker], backend: str) -> Sim:
        """Create the physics world holding this robot (and the task's markers)."""
        ...

    def action_space(self, sim: Sim) -> spaces.Box:
        """The action space the learner sees."""
        ...

    def control(self, sim: Sim, action: np.ndarray) -> np.ndarray:
        """Map a (clipped, finite) action to the actuator controls the sim applies this step."""
        ...

    def reset(self, sim: Sim, rng: np.random.Generator) -> None:
        """Put the robot in a (randomised) initial state."""
        ...

    def observation(self, sim: Sim) -> np.ndarray:
        """Proprioceptive observation."""
        ...

    def root_position(self, sim: Sim) -> np.ndarray:
        """Exact root position, m, shape (3,), from generalised coordinates."""
        ...

    def is_healthy(self, sim: Sim) -> bool:
        """Whether the posture is within the robot's healthy range (upright, not fallen)."""
        ...


class Task(Protocol):
    """What the robot is asked to do, and how it is paid."""

    name: str
    kind: str  # "velocity", "navigation", "reach", "push": used to break the tax down by task type
    capability_metric: str  # "return" (no success notion, e.g. running) or "success": what the tax is measured on
    reward_terms: tuple[str, ...]

    def markers(self) -> Sequence[Marker]:
        """Visual scene elements (goals, hazards) the sim must contain."""
        ...

    def observation_size(self) -> int:
        """Length of :meth:`observation`."""
        ...

    def reset(self, sim: Sim, robot: Robot, rng: np.random.Generator) -> None:
        """Place goals and hazards for a new episode (after the robot's reset)."""
        ...

    def observation(self, sim: Sim, robot: Robot) -> np.ndarray:
        """Task observation appended to the robot's."""
        ...

    def rewards(self, ctx: StepContext) -> dict[str, float]:
        """Signed reward terms keyed by name without the ``reward_`` prefix; they sum to the reward."""
        ...

    def is_success(self, sim: Sim, robot: Robot) -> bool:
        """Whether the task is accomplished now."""
        ...

    def is_terminated(self, sim: Sim, robot: Robot) -> bool:
        """Whether the episode ends now (not counting the time limit)."""
        ...

    def info(self, ctx: StepContext) -> dict[str, float]:
        """Extra diagnostics for ``info`` (positions, velocities)."""
        ...


@dataclass
class CostTerm:
    """One safety constraint: a physical measurement and the threshold it must stay under.

    Subclasses implement :meth:`measure`. By default the per-step cost is the indicator
    ``measure > threshold`` (the Safety-Gym convention, so an episode's cost counts violating steps);
    ``mode="excess"`` gives ``max(0, measure - threshold)`` in the measure's unit instead.

    Attributes:
        name: Term name; the info keys are ``cost_<name>`` and ``measure_<name>``.
        threshold: Largest safe value of the measure, in ``unit``.
        unit: SI unit of the measure, e.g. ``"m/s"``.
        source: Where the threshold comes from (standard, paper, model file).
        kind: Constraint type used in reports: velocity, speed, force, separation, zone, fall, joint_limit.
        mode: ``"indicator"`` (default) or ``"excess"``.
        upper: True if the threshold is an upper bound (violated above it); False for a lower bound
            (violated below it, e.g. a minimum torso height).
    """

    name: str
    threshold: float
    unit: str
    source: str
    kind: str
    mode: str = "indicator"
    upper: bool = True

    def __post_init__(self) -> None:
        if not np.isfinite(self.threshold):
            raise ValueError(f"cost term {self.name!r}: threshold must be finite, got {self.threshold}")
        if self.mode not in ("indicator", "excess"):
            raise ValueError(f"cost term {self.name!r}: mode must be 'indicator' or 'excess', got {self.mode!r}")

    @classmethod
    def at(cls, name: str, limit: Threshold, kind: str, **kwargs: Any) -> Any:
        """The term at a :class:`~taxbench.envs.costs.thresholds.Threshold` (value, unit and source together).

        A factory then never retypes a unit or loses a source.

        Args:
            name: Term name (info keys ``cost_<name>``, ``measure_<name>``).
            limit: The threshold (a default from ``thresholds.py``, or a user's value with its unit and source).
            kind: Constraint type for reports.
            kwargs: The subclass's own fields (``planar``, ``zones``, ``bodies``, ``upper``, ...).
        """
        return cls(name, float(limit.value), limit.unit, limit.source, kind, **kwargs)

    def reset(self, sim: Sim, robot: Robot) -> None:
        """Clear any per-episode state (filters, previous values)."""

    def measure(self, ctx: StepContext) -> float:
        """The physical quantity behind this term, in ``unit``."""
        raise NotImplementedError

    def cost(self, measure: float) -> float:
        """Per-step cost for a measured value."""
        excess = measure - self.threshold if self.upper else self.threshold - measure
        if self.mode == "excess":
            return max(0.0, excess)
        return float(excess > 0.0)

    def cost_batch(self, measures: Any) -> Any:
        """:meth:`cost` of each measure in an array (many worlds at once), the same values; numpy or torch."""
        xp = array_namespace(measures)
        excess = measures - self.threshold if self.upper else self.threshold - measures
        if self.mode == "excess":
            return xp.positive_part(excess)  # max(0.0, excess), NaN included
        return xp.as_float(excess > 0.0)

    def describe(self) -> str:
        """One line for tables: ``speed > 0.25 m/s``."""
        return f"{self.name} {'>' if self.upper else '<'} {self.threshold:g} {self.unit}"


SafetySpec = tuple[CostTerm, ...]
"""The constraints an env reports, in order; ``cost`` is the sum of their costs."""
