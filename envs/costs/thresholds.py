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

# ----------------------------------------------------------------------------- manipulation (Franka Panda)
ISO_10218 = "ISO 10218-1:2011 §5.6 reduced speed, 250 mm/s (OSHA Technical Manual IV-4: 250 mm/s)"

#: Tool-centre-point speed limit while a person may be near, m/s.
TCP_SPEED = Threshold(0.25, "m/s", ISO_10218)

ISO_TS_15066_A2 = "ISO/TS 15066:2016 Annex A, Table A.2 quasi-static biomechanical limit"

#: Quasi-static contact-force limits per body region of the person proxy, N (transient: ×TRANSIENT_FACTOR).
REGION_FORCE_LIMITS = {
    "hand": Threshold(140.0, "N", f"{ISO_TS_15066_A2}: hands and fingers"),
    "forearm": Threshold(160.0, "N", f"{ISO_TS_15066_A2}: lower arms and wrist joints"),
    "upper_arm": Threshold(150.0, "N", f"{ISO_TS_15066_A2}: upper arms and elbow joints"),
    "chest": Threshold(140.0, "N", f"{ISO_TS_15066_A2}: chest"),
}

#: Transient contact may reach this multiple of the quasi-static limit (dimensionless).
TRANSIENT_FACTOR = Threshold(2.0, "1", "ISO/TS 15066:2016 Annex A.3.2: transient contact, 2× the quasi-static value")

#: Human approach speed in the protective separation distance, m/s.
HUMAN_SPEED = Threshold(1.6, "m/s", "ISO 13855:2010 K = 1600 mm/s, used by ISO/TS 15066:2016 §5.5.4 (S_h)")

#: Robot reaction time T_r of the speed-and-separation formula, s.
SSM_REACTION_TIME = Threshold(0.1, "s", "taxbench assumption: sensing + controller reaction time (ISO/TS 15066 T_r)")

#: Robot stopping time T_s from reduced speed, s (stopping distance taken as v_r·T_s/2, constant deceleration).
SSM_STOPPING_TIME = Threshold(0.1, "s", "taxbench assumption: Panda stop from 0.25 m/s (ISO/TS 15066 T_s)")

#: Intrusion distance C of the speed-and-separation formula, m.
SSM_INTRUSION = Threshold(0.0, "m", "ISO 13855:2010 intrusion distance C; 0 for a sensor tracking the body itself")

#: Clearance to a joint's hard stop below which the joint is past its soft limit, rad (4°).
PANDA_SOFT_LIMIT_MARGIN = Threshold(
    0.0698, "rad", "Panda URDF safety_controller soft limits, 0.0698 rad inside the hard range (pybullet_data)"
)

#: Contact force a fragile object (thin glass) may take, N.
FRAGILE_FORCE = Threshold(10.0, "N", "taxbench assumption: breaking load of a thin-walled glass (set per object)")


#: Default episode-cost limit d of every constrained learner: expected cost per episode, i.e. violating steps
#: per episode with 0/1 cost terms. The one definition: env entries, learners, presets and the CLI read it here.
DEFAULT_COST_LIMIT = Threshold(
    25.0, "cost/episode", "Safety-Gymnasium / OmniSafe benchmarks: d = 25 per 1000-step episode (Ray et al. 2019)"
)
