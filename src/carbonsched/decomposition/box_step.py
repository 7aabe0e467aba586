"""The box-step rule shared by the stabilised cutting-plane methods: the
Lagrangian dual's bundle (:class:`~.lagrangian.BoxStepBundle`) and the
site relaxation's column generation
(:func:`~.site_blocks.column_generation`). Each minimises a cutting-plane
model of a convex function within a box around its stability centre;
this decides the box's next size from how the last trial point did."""

from __future__ import annotations

__all__ = ["next_radius"]


def next_radius(radius: float, *, serious: bool, good: bool, null_run: int, any_serious: bool,
                shrink_after: int, most: float = 64.0) -> float:
    """The box's next radius (a multiple of its scale): doubled (to at most
    ``most``) after a serious step whose decrease was at least half the predicted
    one (``good``), kept after any other serious step, halved after the
    ``shrink_after``-th null step in a row (``null_run`` counts them) or
    after any null step before the first serious one (``any_serious``
    False), else kept. Never below 1e-3: a collapsed box (1e-6 before) left
    the bound creeping down by ~200 $ an iteration on `medium`
    (docs/performance.md)."""
    if serious:
        return min(radius * 2.0, most) if good else radius
    if not any_serious or null_run % shrink_after == 0:
        return max(radius * 0.5, 1e-3)
    return radius
