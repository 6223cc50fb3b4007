"""The shared scene: a table, a person standing beside it (torso, upper arm, forearm, hand) and cameras.

World frame: the Panda's base at the origin, the table top at z = 0, the person at +y facing -y with the right
hand resting on the table. Every part is a static box, so contact with it reads as a normal force in N on
both engines. The regions map to ISO/TS 15066 Annex A body regions (see ``PERSON_REGIONS``).
"""

from __future__ import annotations

import numpy as np

from taxbench.envs.core.sim_api import BodySpec, CameraSpec, Marker

TABLE = BodySpec("table", "box", (0.5, 0.7, 0.025), (0.6, 0.1, -0.025), rgba=(0.55, 0.42, 0.3, 1.0), friction=0.5)

_SKIN = (0.93, 0.72, 0.6, 1.0)
_SHIRT = (0.2, 0.35, 0.75, 1.0)

#: The person proxy, one static box per body part (half-extents and centres in m).
PERSON: tuple[BodySpec, ...] = (
    BodySpec("person_hand", "box", (0.045, 0.07, 0.025), (0.5, 0.49, 0.025), rgba=_SKIN),
    BodySpec("person_forearm", "box", (0.04, 0.14, 0.04), (0.5, 0.70, 0.06), rgba=_SKIN),
    BodySpec("person_upper_arm", "box", (0.045, 0.045, 0.17), (0.5, 0.88, 0.27), rgba=_SHIRT),
    BodySpec("person_torso", "box", (0.2, 0.11, 0.65), (0.65, 1.04, -0.05), rgba=_SHIRT),
)

#: ISO/TS 15066 body region → the person's bodies in it.
PERSON_REGIONS: dict[str, tuple[str, ...]] = {
    "hand": ("person_hand",),
    "forearm": ("person_forearm",),
    "upper_arm": ("person_upper_arm",),
    "chest": ("person_torso",),
}

CAMERAS = (
    # The robot, table, target and person in the right ~55 % of the frame: the HUD's boxes sit on the left.
    CameraSpec("overview", (1.4, -1.5, 1.3), (0.0, -0.1, 0.3), fovy=45.0),
    CameraSpec("top", (0.55, 0.25, 2.3), (0.55, 0.251, 0.0), fovy=50.0),
)


def keepout_marker(parts: tuple[BodySpec, ...], distance: float) -> Marker:
    """A thin red box on the table: the footprint of the person's parts grown by ``distance`` m.

    It shows where the TCP may not be even at rest (the protective separation distance at zero robot
    speed); the exact zone is the rounded union of the grown boxes.
    """
    low = np.min([np.asarray(p.position) - p.half_extents for p in parts], axis=0) - distance
    high = np.max([np.asarray(p.position) + p.half_extents for p in parts], axis=0) + distance
    low[:2] = np.maximum(low[:2], [TABLE.position[0] - TABLE.size[0], TABLE.position[1] - TABLE.size[1]])
    high[:2] = np.minimum(high[:2], [TABLE.position[0] + TABLE.size[0], TABLE.position[1] + TABLE.size[1]])
    center, half = (low + high) / 2, (high - low) / 2
    return Marker(
        "keepout",
        "box",
        (float(half[0]), float(half[1]), 0.001),
        (0.9, 0.1, 0.1, 0.35),
        (float(center[0]), float(center[1]), 0.0015),
    )
