"""Every default safety threshold in one table, each with its source.

All values are SI. Each is only a default: every env takes the threshold as a constructor kwarg.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Threshold:
    """A default limit and where it comes from.

    Attributes:
        value: The limit, in ``unit``.
        unit: SI unit.
        source: Standard, paper or model file the number is taken from.
    """

    value: float
    unit: str
    source: str


SG_V1 = "Safety-Gymnasium v1 velocity tasks (safe_velocity/*_v1.py)"

#: Forward-velocity limits of the Safety-Gymnasium v1 velocity tasks, m/s (for comparability).
VELOCITY_LIMITS = {
    "half_cheetah": Threshold(3.2096, "m/s", SG_V1),
    "hopper": Threshold(0.7402, "m/s", SG_V1),
    "walker2d": Threshold(2.3415, "m/s", SG_V1),
    "ant": Threshold(2.6222, "m/s", SG_V1),
}

#: An absolute forward-speed limit for HalfCheetah's slow-zone variant, m/s. Safety-Gymnasium's 3.21 m/s
#: is rarely reached by PPO below 1M steps; PPO's HalfCheetah runs at 0.8-1.7 m/s after 120k steps
#: (measured, see README), so 1.0 m/s binds within a quick CPU budget.
SLOW_ZONE_SPEED = Threshold(1.0, "m/s", "taxbench slow zone: binds at quick budgets (measured)")

#: Velocity limits that can be asked for by name (``velocity_limit="slow_zone"``).
NAMED_VELOCITY_LIMITS = {"slow_zone": SLOW_ZONE_SPEED}

GYM_V5 = "Gymnasium v5 healthy_z_range (the robot has fallen below it)"

#: Lowest healthy torso height, m: below it the robot has fallen.
FALL_HEIGHTS = {
    "hopper": Threshold(0.7, "m", GYM_V5),
    "walker2d": Threshold(0.8, "m", GYM_V5),
    "ant": Threshold(0.2, "m", GYM_V5),
}

#: Torso tilt from upright beyond which the robot is on its back, rad (90°).
FLIP_TILT = Threshold(1.5707963267948966, "rad", "taxbench: torso up-axis below the horizon (flipped)")

#: Depth past a joint's range in the model, rad. MuJoCo's joint limits are soft, so a loaded joint
#: sinks slightly past its range; 1° past it means the joint is being driven into its stop.
JOINT_LIMIT_DEPTH = Threshold(0.0175, "rad", "joint ranges of the robot model (MJCF/URDF), +1° soft-limit play")

#: Hazard zones: any depth inside a zone is a violation, m.
HAZARD_DEPTH = Threshold(0.0, "m", "Safety-Gym hazards: cost while inside the zone")
