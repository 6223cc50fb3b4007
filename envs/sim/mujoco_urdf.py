"""Build a MuJoCo model of a URDF robot that matches what PyBullet makes of the same file.

The second module allowed to import ``mujoco`` (beside :mod:`taxbench.envs.sim.mujoco_sim`). It handles the
points NOTES.md lists for ``pybullet_data``'s Franka Panda: ``package://`` paths, fixed links kept as named
bodies (``fusestatic="false"``), collision meshes rendered with an ``rgba`` (the multi-object visual OBJ
files are not read at all), PyBullet's box inertias, removed (held) joints instead of the ``<mimic>``
equality, self-collision off, velocity actuators with the URDF effort limits, and gravity compensation
so the velocity servos hold the arm the way PyBullet's velocity motors do.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import mujoco
import numpy as np

from taxbench.envs.core.sim_api import BodySpec, CameraSpec

#: PyBullet grows a convex mesh's bounding box by this collision margin before taking box inertias, m.
PYBULLET_MESH_MARGIN = 0.004
_ROBOT_RGBA = (0.92, 0.92, 0.92, 1.0)
_GEOM_TYPES = {
    "box": mujoco.mjtGeom.mjGEOM_BOX,
    "sphere": mujoco.mjtGeom.mjGEOM_SPHERE,
    "cylinder": mujoco.mjtGeom.mjGEOM_CYLINDER,
}


def _urdf_joint_limits(root: ET.Element) -> dict[str, tuple[float, float]]:
    """Joint name → (effort N·m or N, velocity rad/s or m/s) from the URDF ``<limit>`` elements."""
    limits = {}
    for joint in root.iter("joint"):
        limit = joint.find("limit")
        if limit is not None:
            limits[joint.get("name", "")] = (float(limit.get("effort", "0")), float(limit.get("velocity", "0")))
    return limits


def _obj_vertices(path: Path) -> np.ndarray:
    rows = [line.split()[1:4] for line in path.read_text().splitlines() if line.startswith("v ")]
    return np.asarray(rows, dtype=np.float64)


def _quat_matrix(quat: Sequence[float]) -> np.ndarray:
    matrix = np.zeros(9)
    mujoco.mju_quat2Mat(matrix, np.asarray(quat, dtype=np.float64))
    return matrix.reshape(3, 3)


def _box_inertias(spec: mujoco.MjSpec, mesh_dir: Path) -> None:
    """Give each body PyBullet's inertia: a solid box over its collision meshes' bounds (+ margin)."""
    files = {mesh.name: mesh_dir / mesh.file for mesh in spec.meshes}
    cache: dict[str, np.ndarray] = {}
    for body in spec.bodies:
        meshes = [g for g in body.geoms if g.type == mujoco.mjtGeom.mjGEOM_MESH]
        if not meshes or body.mass <= 0:
            continue
        points = []
        for geom in meshes:
            if geom.meshname not in cache:
                cache[geom.meshname] = _obj_vertices(files[geom.meshname])
            points.append(cache[geom.meshname] @ _quat_matrix(geom.quat).T + np.asarray(geom.pos))
        stacked = np.vstack(points)
        lx, ly, lz = stacked.max(axis=0) - stacked.min(axis=0) + 2 * PYBULLET_MESH_MARGIN
        body.inertia = body.mass / 12.0 * np.array([ly**2 + lz**2, lx**2 + lz**2, lx**2 + ly**2])
        body.iquat = [1.0, 0.0, 0.0, 0.0]
        body.fullinertia = [np.nan] * 6


def add_scene(spec: mujoco.MjSpec, bodies: Sequence[BodySpec], cameras: Sequence[CameraSpec]) -> None:
    """Add collision bodies (static, or free if ``mass > 0``), fixed cameras and two lights to a spec."""
    for body in bodies:
        size = [*body.size, 0.0, 0.0][:3]
        static = body.mass <= 0
        b = spec.worldbody.add_body(name=body.name, pos=list(body.position))
        if not static:
            b.add_freejoint(name=f"{body.name}_free")
        b.add_geom(
            name=f"{body.name}_geom",
            type=_GEOM_TYPES[body.shape],
            size=size,
            rgba=list(body.rgba),
            friction=[body.friction, 0.005, 0.0001],
            **({} if static else {"mass": body.mass}),
        )
    for cam in cameras:
        forward = np.asarray(cam.target, dtype=np.float64) - np.asarray(cam.position, dtype=np.float64)
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        spec.worldbody.add_camera(name=cam.name, pos=list(cam.position), fovy=cam.fovy, xyaxes=[*right, *up])
    spec.worldbody.add_light(name="key_light", pos=[0.5, -1.0, 2.5], dir=[0.0, 0.4, -1.0], diffuse=[0.7, 0.7, 0.7])
    spec.worldbody.add_light(name="fill_light", pos=[0.5, 1.5, 2.0], dir=[0.0, -0.6, -1.0], diffuse=[0.4, 0.4, 0.4])


def urdf_spec(
    urdf_path: str | Path,
    *,
    timestep: float,
    velocity_joints: Sequence[str],
    velocity_gain: float,
    removed_joints: Sequence[str] = (),
    bodies: Sequence[BodySpec] = (),
    cameras: Sequence[CameraSpec] = (),
    base_position: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> mujoco.MjSpec:
    """An :class:`mujoco.MjSpec` of a fixed-base URDF robot in a scene, ready for ``MujocoSim``.

    Args:
        urdf_path: The URDF file; meshes are looked up relative to its folder.
        timestep: Physics time step, s.
        velocity_joints: Joints given a velocity actuator (named like the joint): the control is a target
            velocity (± the URDF velocity limit), the force is ``velocity_gain × error`` capped at the URDF effort.
        velocity_gain: Velocity servo gain, N·m·s/rad (stiff, like PyBullet's velocity motor).
        removed_joints: Joints deleted from the model: their child links become rigid at position 0
            (e.g. closed fingers; PyBullet holds them there with a position motor).
        bodies: Collision bodies added to the scene.
        cameras: Fixed named cameras.
        base_position: World position of the robot's base, m.
    """
    urdf_path = Path(urdf_path)
    text = urdf_path.read_text().replace("package://", "")
    root = ET.fromstring(text)
    limits = _urdf_joint_limits(root)
    compiler = ET.SubElement(root, "mujoco")
    ET.SubElement(compiler, "compiler", {"discardvisual": "true", "fusestatic": "false", "strippath": "false"})
    spec = mujoco.MjSpec.from_string(ET.tostring(root, encoding="unicode"))
    spec.meshdir = str(urdf_path.parent)
    # Visual geoms were never imported; stop discarding so visual-only markers (contype 0) survive compile.
    spec.compiler.discardvisual = False
    spec.option.timestep = timestep
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    for equality in list(spec.equalities):
        spec.delete(equality)
    for name in removed_joints:
        spec.delete(spec.joint(name))
    _box_inertias(spec, urdf_path.parent)
    for body in spec.bodies:
        if body.name == "world":
            continue
        body.gravcomp = 1.0
        for i, geom in enumerate(body.geoms):
            geom.name = f"{body.name}_collision{i or ''}"
            geom.rgba = list(_ROBOT_RGBA)
            geom.contype, geom.conaffinity = 2, 1  # touch the world, not each other (PyBullet's default)
    base = spec.worldbody.first_body()
    base.pos = list(base_position)
    for name in velocity_joints:
        effort, velocity = limits[name]
        actuator = spec.add_actuator(name=name, target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        actuator.set_to_velocity(kv=velocity_gain)
        actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        actuator.ctrlrange = [-velocity, velocity]
        actuator.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        actuator.forcerange = [-effort, effort]
    add_scene(spec, bodies, cameras)
    return spec
