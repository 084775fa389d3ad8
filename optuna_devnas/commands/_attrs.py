"""Keys of the trial attributes that ``devnas`` commands write, in one place.

User attributes are meant for people (dashboards, ``devnas export``); system attributes are the
commands' own bookkeeping. Each key is namespaced ``devnas:``.
"""

from __future__ import annotations

WEIGHTS_ATTR = "devnas:weights"
"""User attribute: artifact id of the trained state dict in the artifact store."""

FAILURE_ATTR = "devnas:failure"
"""User attribute of a trial that failed in the objective: ``"ValueError: ..."``."""

WORKER_ATTR = "devnas:worker"
"""System attribute: ``"host:pid"`` of the worker that planned and ran the trial."""

SURPLUS_ATTR = "devnas:surplus"
"""System attribute: ``True`` on a trial failed before planning, past the budget."""

INTERRUPTED_ATTR = "devnas:interrupted"
"""System attribute: ``True`` on a trial failed because its worker was interrupted."""
