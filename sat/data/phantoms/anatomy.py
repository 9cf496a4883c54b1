"""Torso geometry: paints an exclusive part map, from which overlapping concept masks follow.

Parts are finer than concepts (the heart has muscle and blood pool; the stomach has wall, fluid
and gas) and include unlabelled tissue (fat, muscle, bowel, ribs) that shares intensities with
the labelled organs. Parts are painted in a fixed order, so later (smaller) structures carve
earlier ones; lesions are painted only onto their organ, which makes them nested by construction.

Body-frame coordinates are RAS+ millimetres: x towards the patient's RIGHT, y anterior,
z superior, the torso centred at the origin. (NIfTI world space is RAS+, so the left kidney
lies at smaller world x; the real TotalSegmentator sample agrees.)
"""
from __future__ import annotations

import numpy as np

from sat.data.phantoms.shapes import Grid, ellipsoid, ellipsoid_local, paint, rotation, smooth_noise, tube

PARTS = (
    "air", "fat", "muscle", "bowel_wall", "bowel_fluid", "bowel_gas", "bone", "vert_cortex",
    "vert_marrow", "disc", "canal", "lung_left", "lung_right", "airway", "heart_muscle",
    "heart_blood", "liver", "liver_tumor", "gallbladder", "spleen", "stomach_wall",
    "stomach_fluid", "stomach_gas", "pancreas", "kidney_left", "kidney_right",
    "kidney_cyst_left", "kidney_cyst_right", "aorta", "ivc", "vessel", "bladder",
)
P = {name: i for i, name in enumerate(PARTS)}

CONCEPTS = (
    "body", "liver", "spleen", "kidney_left", "kidney_right", "stomach", "pancreas", "aorta",
    "inferior_vena_cava", "vertebral_column", "lung_left", "lung_right", "heart",
    "urinary_bladder", "gallbladder", "liver_tumor", "kidney_cyst",
)
CONCEPT_PARTS: dict[str, tuple[str, ...]] = {
    "body": PARTS[1:],
    "liver": ("liver", "liver_tumor"),
    "spleen": ("spleen",),
    "kidney_left": ("kidney_left", "kidney_cyst_left"),
    "kidney_right": ("kidney_right", "kidney_cyst_right"),
    "stomach": ("stomach_wall", "stomach_fluid", "stomach_gas"),
    "pancreas": ("pancreas",),
    "aorta": ("aorta",),
    "inferior_vena_cava": ("ivc",),
    "vertebral_column": ("vert_cortex", "vert_marrow"),
    "lung_left": ("lung_left",),
    "lung_right": ("lung_right",),
    "heart": ("heart_muscle", "heart_blood"),
    "urinary_bladder": ("bladder",),
    "gallbladder": ("gallbladder",),
    "liver_tumor": ("liver_tumor",),
    "kidney_cyst": ("kidney_cyst_left", "kidney_cyst_right"),
}


def concept_lut(values: dict[str, int] | list[tuple[str, int]], dtype=np.uint8) -> np.ndarray:
    """Part id -> value table; later concepts overwrite earlier ones (paint lesions last).

    ``table[parts]`` then turns a part map into a label map in one gather.
    """
    lut = np.zeros(len(PARTS), dtype=dtype)
    for concept, value in (values.items() if isinstance(values, dict) else values):
        lut[[P[p] for p in CONCEPT_PARTS[concept]]] = value
    return lut


def concept_mask(parts: np.ndarray, concept: str) -> np.ndarray:
    """Boolean (X, Y, Z) mask of ``concept`` from the exclusive part map."""
    if concept not in CONCEPT_PARTS:
        raise ValueError(f"unknown phantom concept {concept!r}; expected one of {CONCEPTS}")
    return concept_lut({concept: 1}, dtype=bool)[parts]


def build_anatomy(grid: Grid, rng: np.random.Generator, scale: np.ndarray, *,
                  tumor_prob: float, cyst_prob: float) -> np.ndarray:
    """Paint one torso onto ``grid``.

    Args:
        grid: deformed body-frame grid.
        rng: the case's generator (consumed in a fixed order).
        scale: (3,) torso size factors along x, y, z (about 1 +- 0.08).
        tumor_prob: probability that the liver holds 1-2 tumours.
        cyst_prob: probability that one kidney holds a cyst.

    Returns:
        (X, Y, Z) uint8 part map indexing :data:`PARTS`.
    """
    s = tuple(float(v) for v in scale)  # python floats keep float32 arrays float32

    def at(x: float, y: float, z: float, jitter: float = 6.0) -> np.ndarray:
        return np.array([x, y, z]) * s + rng.uniform(-jitter, jitter, 3)

    def size(rx: float, ry: float, rz: float, spread: float = 0.1) -> np.ndarray:
        return np.array([rx, ry, rz]) * s * rng.uniform(1 - spread, 1 + spread, 3)

    def turn(rx: float = 0.0, ry: float = 0.0, rz: float = 0.0, spread: float = 8.0) -> np.ndarray:
        return rotation(*(np.array([rx, ry, rz]) + rng.uniform(-spread, spread, 3)))

    owner = np.zeros(grid.shape, dtype=np.uint8)
    depth = _skin_depth(grid, 170 * s[0], 130 * s[1], 110 * s[1])  # (X, Y, Z) mm inside skin
    t_fat, t_wall = rng.uniform(8, 30), rng.uniform(6, 12)
    body, cavity = depth >= 0, depth >= t_fat + t_wall
    owner[body] = P["fat"]
    owner[body & ~cavity & (depth >= t_fat)] = P["muscle"]

    # Back and psoas muscles, then bowel loops filling the lower abdomen.
    for side in (-1, 1):
        paint(owner, P["muscle"], ellipsoid(grid, at(38 * side, -80, 0, 3),
                                            [28, 24, 1000]), within=body)
        paint(owner, P["muscle"], tube(grid, [at(40 * side, -45, -20), at(58 * side, -35, -200)],
                                       [8, 22]), within=cavity)
    gut_box = grid.box(np.array([-1e4, -35.0, -150 * s[2]]), np.array([1e4, 1e4, -30 * s[2]]))
    if gut_box is not None:
        _, gy, gz = grid.coords(gut_box)
        gut_axes = tuple(ax[sl] for ax, sl in zip(grid.axes, gut_box))
        loops, content = smooth_noise(rng, gut_axes, 22.0, channels=2)
        gut = cavity[gut_box] & (gz < -30 * s[2]) & (gz > -150 * s[2]) & (gy > -35)
        view = owner[gut_box]
        view[gut & (loops > 0.1)] = P["bowel_wall"]
        lumen = gut & (loops > 0.7)
        view[lumen] = np.where(content[lumen] > 0.9, P["bowel_gas"], P["bowel_fluid"])

    # Thorax: lungs and airway.
    paint(owner, P["lung_right"], ellipsoid(grid, at(80, -5, 118), size(62, 88, 105)), within=cavity)
    paint(owner, P["lung_left"], ellipsoid(grid, at(-80, -5, 113), size(58, 88, 105)), within=cavity)
    carina = at(0, -12, 140, 3)
    for side in (-1, 1):
        paint(owner, P["airway"], tube(grid, [carina, at(45 * side, -12, 112, 3)], [7, 5]))
    paint(owner, P["airway"], tube(grid, [carina, carina + [0, 0, 200]], [9, 9]))

    _spine(owner, grid, s, rng)
    _ribs_and_pelvis(owner, grid, depth, s, t_fat + t_wall)
    del depth

    # Abdominal organs, larger first; each may carve the ones painted before it.
    paint(owner, P["liver"], ellipsoid(grid, at(62, 5, 8), size(78, 85, 72), turn(0, 10, 0)),
          within=cavity)
    paint(owner, P["liver"], ellipsoid(grid, at(-5, 55, 12), size(50, 30, 28), turn(0, 0, 15)),
          within=cavity)
    heart_c, heart_rot = at(-22, 35, 62), turn(0, 20, -35)
    paint(owner, P["heart_muscle"], ellipsoid(grid, heart_c, size(58, 45, 50), heart_rot), within=cavity)
    for offset in (-18, 18):
        chamber = heart_c + heart_rot @ np.array([offset, 0.0, 0.0]) * s
        paint(owner, P["heart_blood"], ellipsoid(grid, chamber, size(20, 28, 32), heart_rot),
              onto=(P["heart_muscle"],))
    paint(owner, P["spleen"], ellipsoid(grid, at(-100, -45, 12), size(30, 55, 45), turn(0, 0, 40)),
          within=cavity)
    _stomach(owner, grid, rng, at(-62, 22, 10), size(42, 36, 58), turn(0, -25, 20), cavity)
    paint(owner, P["gallbladder"], ellipsoid(grid, at(42, 50, -45), size(14, 16, 32, 0.2),
                                             turn(25, 0, -20)), within=cavity)
    paint(owner, P["pancreas"], tube(grid, [at(28, 8, -40), at(0, 14, -28), at(-40, 8, -18),
                                            at(-80, -5, -5)], [17, 12, 11, 9]), within=cavity)
    kidneys = {"kidney_left": (-75, -32, 15), "kidney_right": (75, -48, -15)}
    for name, (kx, kz, tilt) in kidneys.items():
        center, rot = at(kx, -45, kz), turn(0, tilt, 0)
        paint(owner, P[name], ellipsoid(grid, center, size(26, 30, 55), rot), within=cavity)
        hilum = center + np.array([-np.sign(kx) * 20, 8, 0])
        paint(owner, P["fat"], ellipsoid(grid, hilum, size(11, 14, 24), rot), onto=(P[name],))
    fill = rng.uniform(0.7, 1.15)
    paint(owner, P["bladder"], ellipsoid(grid, at(0, 50, -165), size(45, 35, 35) * fill), within=cavity)
    _vessels(owner, grid, at)
    _lesions(owner, grid, rng, tumor_prob, cyst_prob)
    return owner


def _skin_depth(grid: Grid, a: float, b_ant: float, b_post: float) -> np.ndarray:
    """Depth below the skin (mm, negative outside) of an elliptic torso section, along the ray
    from the body axis; the section is deeper in front (``b_ant``) than behind (``b_post``)."""
    x = grid.axes[0][:, None, None] + grid.disp[0]             # (X, Y, Z)
    y = grid.axes[1][None, :, None] + grid.disp[1]
    rho2 = np.where(y > 0, np.float32(1 / b_ant), np.float32(1 / b_post))
    rho2 *= y
    rho2 *= rho2
    r2 = x * x
    r2 += y * y                                                 # |p|^2
    del y
    x *= np.float32(1 / a)
    x *= x
    rho2 += x                                                   # (x/a)^2 + (y/b)^2
    del x
    np.maximum(rho2, np.float32(1e-6), out=rho2)
    rho2 = np.sqrt(np.divide(r2, rho2, out=rho2), out=rho2)    # |p| / rho
    rho2 -= np.sqrt(r2, out=r2)                                # |p| (1 / rho - 1)
    return rho2


def _spine(owner, grid, s, rng) -> None:
    """Vertebral bodies (cortex + marrow) with discs, posterior arches and the spinal canal."""
    yb = -110 * s[1] + 55 + rng.uniform(-4, 4)   # vertebral body centre, y
    yc = yb - 30                                   # canal centre, y
    period = 30 * s[2] * rng.uniform(0.95, 1.05)
    phase = rng.uniform(0, period)
    box = grid.box(np.array([-40.0, yc - 36, -1e4]), np.array([40.0, yb + 18, 1e4]))
    if box is None:
        return
    x, y, z = grid.coords(box)
    view = owner[box]
    local = np.mod(z - phase, period) - period / 2  # mm from the level's centre
    r_body = (x / 22) ** 2 + ((y - yb) / 17) ** 2
    r_canal = np.sqrt(x**2 + (y - yc) ** 2)
    view[r_body <= 1] = P["disc"]
    view[(r_body <= 1) & (np.abs(local) <= 0.4 * period)] = P["vert_cortex"]
    view[(r_body <= 0.6) & (np.abs(local) <= 0.32 * period)] = P["vert_marrow"]
    arch = (r_canal >= 8) & (r_canal <= 15) & (y < yb - 12)
    spinous = (np.abs(x) <= 5) & (y <= yc) & (y >= yc - 35)
    transverse = (np.abs(x) <= 38) & (np.abs(y - yc) <= 6)
    view[(arch | spinous | transverse) & (np.abs(local) <= 0.3 * period)] = P["vert_cortex"]
    view[r_canal < 8] = P["canal"]


def _ribs_and_pelvis(owner, grid, depth, s, t_inner) -> None:
    """Ribs in the thoracic wall, a sternum, and two iliac wings; all unlabelled bone."""
    box = grid.box(np.array([-1e4, -1e4, -25 * s[2]]), np.array([1e4, 1e4, 205 * s[2]]))
    if box is not None:
        x, y, z = grid.coords(box)
        d = depth[box]
        wall = (d >= t_inner - 9) & (d <= t_inner + 1) & (z > -25 * s[2]) & (z < 205 * s[2])
        rib_level = np.abs(np.mod(z + 0.3 * y, 26 * s[2]) - 13 * s[2]) <= 4.5
        front = (np.abs(x) < 25) & (y > 0)
        view = owner[box]
        view[wall & rib_level & ~front] = P["bone"]
        view[wall & (np.abs(x) < 16) & (y > 0) & (z > 40 * s[2])] = P["bone"]  # sternum
    for side in (-1, 1):
        r_out = np.array([45, 35, 50]) * s
        hit = ellipsoid_local(grid, np.array([70 * side, -25, -175]) * s, r_out)
        if hit is None:
            continue
        box, u = hit
        shrink = (r_out / (r_out - 7)).astype(np.float32)[:, None, None, None]
        shell = ((u**2).sum(axis=0) <= 1) & (((u * shrink) ** 2).sum(axis=0) > 1)
        paint(owner, P["bone"], (box, shell & (grid.coords(box)[1] < -5)))


def _stomach(owner, grid, rng, center, radii, rot, cavity) -> None:
    """Stomach wall around fluid, with a gas cap on the anterior (upper, when supine) side."""
    hit = ellipsoid_local(grid, center, radii, rot)
    if hit is None:
        return
    box, u = hit
    r2 = (u**2).sum(axis=0)
    inner = ((u * (radii / (radii - 5)).astype(np.float32)[:, None, None, None]) ** 2).sum(axis=0)
    gas = (grid.coords(box)[1] - center[1]) / radii[1] > rng.uniform(0.2, 0.8)
    paint(owner, P["stomach_wall"], (box, r2 <= 1), within=cavity)
    paint(owner, P["stomach_fluid"], (box, (inner <= 1) & ~gas), onto=(P["stomach_wall"],))
    paint(owner, P["stomach_gas"], (box, (inner <= 1) & gas), onto=(P["stomach_wall"],))


def _vessels(owner, grid, at) -> None:
    """Aorta and IVC (labelled), then iliac, renal and portal vessels (unlabelled)."""
    aorta = [at(-5, 30, 78, 3), at(-5, 18, 125, 3), at(-15, -20, 132, 3), at(-15, -25, 110, 3),
             at(-15, -25, -135, 3)]
    paint(owner, P["aorta"], tube(grid, aorta, [14, 14, 13, 12, 10]))
    ivc = [at(22, -20, -135, 3), at(22, -20, 20, 3), at(12, 15, 48, 3)]
    paint(owner, P["ivc"], tube(grid, ivc, [11, 12, 12]))
    for side in (-1, 1):
        paint(owner, P["vessel"], tube(grid, [aorta[-1], at(50 * side, -20, -195)], [7, 6]))
        paint(owner, P["vessel"], tube(grid, [ivc[0], at(55 * side, -30, -200)], [8, 7]))
    paint(owner, P["vessel"], tube(grid, [at(-58, -35, -32, 3), at(18, -20, -40, 3)], [5, 5]),
          onto=(P["fat"], P["kidney_left"], P["muscle"], P["bowel_wall"], P["pancreas"]))
    paint(owner, P["vessel"], tube(grid, [at(10, 5, -35), at(45, 10, -5), at(80, 5, 5)], [7, 6, 4]))


def _lesions(owner, grid, rng, tumor_prob: float, cyst_prob: float) -> None:
    """1-2 liver tumours and one kidney cyst, each painted only onto its organ."""
    host_min = 1.5 * max(np.diff(ax[:2])[0] for ax in grid.axes)  # keep lesions a few voxels wide
    plan = []
    if rng.random() < tumor_prob:
        plan += [("liver", "liver_tumor", 8.0, 24.0)] * int(rng.integers(1, 3))
    if rng.random() < cyst_prob:
        side = "left" if rng.random() < 0.5 else "right"
        plan.append((f"kidney_{side}", f"kidney_cyst_{side}", 7.0, 18.0))
    for host, part, r_lo, r_hi in plan:
        idx = np.flatnonzero(owner == P[host])
        if idx.size == 0:
            continue
        i, j, k = np.unravel_index(idx[rng.integers(idx.size)], owner.shape)
        center = np.array([grid.axes[0][i], grid.axes[1][j], grid.axes[2][k]], float) \
            + grid.disp[:, i, j, k]
        radius = max(rng.uniform(r_lo, r_hi), host_min)
        radii = radius * rng.uniform(0.8, 1.2, 3)
        rot = rotation(*rng.uniform(-90, 90, 3))
        paint(owner, P[part], ellipsoid(grid, center, radii, rot), onto=(P[host],))
