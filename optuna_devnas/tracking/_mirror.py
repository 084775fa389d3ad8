"""One MLflow experiment kept in step with one Optuna study: a parent run, a nested run per trial.

The Optuna storage is the record and MLflow a view of it, so every write here can be repeated
without harm. Which run is the study's parent and which is each trial's is decided once, in the
Optuna storage, by a first-writer-wins claim (:mod:`~optuna_devnas.tracking._claims`): workers
that start at the same instant agree on one run each, and a worker whose new run lost the claim
deletes it. Metrics carry timestamps taken from the trial (MLflow's SQL store drops exact
duplicates), params and artifacts are rewritten with the same values, and a trial run gets its
``devnas.synced`` tag last, so a write cut short is redone by the next sync. Both the tracker
and ``sync_study`` write through :class:`StudyMirror`; what to do when MLflow fails is the
tracker's business.

Everything goes through ``MlflowClient`` with explicit run ids, never the fluent active-run
stack, so threads of ``study.optimize(n_jobs=...)`` can share a mirror.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
import datetime
import functools
import hashlib
import threading
from typing import TYPE_CHECKING
import uuid

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_devnas.tracking._claims import claim, claims
from optuna_devnas.tracking._parent import ParentRun
from optuna_devnas.tracking._records import (
    PARENT_TAG,
    PARETO_TAG,
    ROLE_TAG,
    RUN_CLAIM_PREFIX,
    STATE_TAG,
    STUDY_TAG,
    STUDY_UID_ATTR,
    STUDY_UID_TAG,
    SYNCED_TAG,
    TRIAL_TAG,
    millis,
    objective_names,
    trial_record,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

_PAGE = 1000
# MLflow 3's UI opens an experiment of no declared kind on its GenAI pages (or asks which kind
# it is); a search is model development, whose experiment page is the runs table.
_KIND_TAG = "mlflow.experimentKind"
_KIND = {_KIND_TAG: "custom_model_development"}
PARENT_CLAIM = "parent"
TRIAL_CLAIM = "trial:"


def trial_run_name(study_name: str, number: int) -> str:
    """``<study> #<number>``: the study is named so that runs of several studies in one
    experiment (the runs table of a comparison) tell which search they come from."""
    return f"{study_name} #{number}"


def study_uid(study: optuna.Study) -> str:
    """The study's MLflow identity, kept in its storage (system attribute
    ``devnas:mlflow_study_uid``) so that every worker and every later sync finds the same
    parent run, and a new study that reuses an old name gets a parent run of its own. Of
    workers starting at once, the first to store an id wins and all use it."""
    return str(claim(study, STUDY_UID_ATTR, uuid.uuid4().hex))


@functools.cache
def provenance_tags() -> dict[str, str]:
    """The tags ``mlflow.start_run`` sets from where it runs: source file and type, user, git
    commit (MLflow's run context providers; ``MlflowClient.create_run`` sets none)."""
    from mlflow.tracking.context import registry

    return {str(k): str(v) for k, v in registry.resolve_tags().items()}


def claim_prefix(tracking_uri: str, experiment_id: str) -> str:
    """Prefix of the study system attributes naming the runs of one experiment of one tracking
    store: ``devnas:mlflow:<digest>:`` (a digest, so that no credential in the URI is stored).
    """
    digest = hashlib.sha1(f"{tracking_uri}\n{experiment_id}".encode()).hexdigest()[:12]
    return f"{RUN_CLAIM_PREFIX}{digest}:"


@dataclass
class _TrialRun:
    run_id: str
    synced: str | None = None  # trial state written in full, from the devnas.synced tag
    pareto: str | None = None
    live_steps: set[tuple[str, int]] = field(default_factory=set)  # (metric, step) sent live


@dataclass(frozen=True)
class SyncResult:
    """What one sync did: the trial runs it created, updated, and found already up to date,
    and the duplicate runs (of older versions) it deleted."""

    experiment_id: str
    parent_run_id: str
    created: int
    updated: int
    unchanged: int
    deleted: int = 0


class StudyMirror:
    """Writes ``study`` into ``experiment_name`` of the tracking store behind ``client``.

    Args:
        client:
            An ``mlflow.MlflowClient`` for the tracking store.
        study:
            The Optuna study (its storage is the record).
        experiment_name:
            MLflow experiment of the parent run (created if missing).
        metric_names:
            Names of the objective values when the study has no ``metric_names``.
        parent_tags:
            Extra tags for the parent run when it is created (e.g. the sampler's class).
        hypervolume_bounds:
            ``(best, worst)`` per objective, normalising the hypervolume logged on the parent
            run; ``None``: the bounds stored with the study, if any.
    """

    def __init__(
        self,
        client: MlflowClient,
        study: optuna.Study,
        *,
        experiment_name: str,
        metric_names: Sequence[str] | None = None,
        parent_tags: dict[str, str] | None = None,
        hypervolume_bounds: Sequence[tuple[float, float]] | None = None,
    ) -> None:
        self.client = client
        self.study = study
        self.experiment_name = experiment_name
        self.metric_names = objective_names(study, metric_names)
        self._parent_tags = dict(parent_tags or {})
        self._lock = threading.RLock()
        self._experiment_id: str | None = None
        self._parent_id: str | None = None
        self._prefix = ""  # of the claims naming this experiment's runs, once connected
        self._runs: dict[int, _TrialRun] = {}  # claimed runs, by trial number
        self._unclaimed: dict[int, str] = {}  # runs of trials without a claim, found in MLflow
        self.parent = ParentRun(self, hypervolume_bounds=hypervolume_bounds)

    @property
    def parent_run_id(self) -> str | None:
        """Run id of the study's parent run, once known."""
        return self._parent_id

    def run_ids(self) -> dict[int, str]:
        """Run id of each trial (by number) that has a run so far."""
        with self._lock:
            return {number: run.run_id for number, run in self._runs.items()}

    # -- finding and creating runs -------------------------------------------------------------

    def connect(self, *, reload: bool = True) -> str:
        """Find or create the experiment and the parent run, and reload the trial runs."""
        with self._lock:
            if self._experiment_id is None:
                self._experiment_id = self._experiment()
                self._prefix = claim_prefix(self.client.tracking_uri, self._experiment_id)
            if self._parent_id is None:
                uid = study_uid(self.study)
                tags = {
                    ROLE_TAG: "study",
                    STUDY_TAG: self.study.study_name,
                    STUDY_UID_TAG: uid,
                    "optuna.directions": ",".join(d.name for d in self.study.directions),
                    "optuna.metric_names": ",".join(self.metric_names),
                    **self._parent_tags,
                }
                starts = [t.datetime_start for t in self.study.get_trials(deepcopy=False)]
                start = min((s for s in starts if s is not None), default=None)
                self._parent_id, _ = self._claimed_run(
                    PARENT_CLAIM,
                    self._earliest(f"tags.`{STUDY_UID_TAG}` = '{uid}'"),
                    tags=tags,
                    run_name=self.study.study_name,
                    start_time=millis(start),
                )
            if reload:
                self._reload()
            return self._parent_id

    def _reload(self) -> None:
        """Read back the trial runs claimed so far, and the unclaimed ones (written by older
        versions, or just created by a worker about to claim them) that a claim may adopt."""
        claimed = {
            int(key[len(self._prefix) + len(TRIAL_CLAIM) :]): run_id
            for key, run_id in self._claims().items()
            if key.startswith(self._prefix + TRIAL_CLAIM)
        }
        loaded: dict[int, _TrialRun] = {}
        unclaimed: dict[int, str] = {}
        runs = self._search(f"tags.`{PARENT_TAG}` = '{self._parent_id}'")
        for run in sorted(runs, key=lambda run: (run.info.start_time, run.info.run_id)):
            number = int(run.data.tags.get(TRIAL_TAG, -1))
            if number < 0:
                continue
            if claimed.get(number) != run.info.run_id:
                unclaimed.setdefault(number, run.info.run_id)
                continue
            loaded[number] = _TrialRun(
                run.info.run_id, run.data.tags.get(SYNCED_TAG), run.data.tags.get(PARETO_TAG)
            )
            if number in self._runs:  # keep what this process already sent live
                loaded[number].live_steps = self._runs[number].live_steps
        self._runs = loaded
        self._unclaimed = unclaimed

    def _experiment(self) -> str:
        experiment = self.client.get_experiment_by_name(self.experiment_name)
        if experiment is None:
            try:
                return str(self.client.create_experiment(self.experiment_name, tags=_KIND))
            except Exception:  # another worker created it first
                experiment = self.client.get_experiment_by_name(self.experiment_name)
                if experiment is None:
                    raise
        if _KIND_TAG not in experiment.tags:
            self.client.set_experiment_tag(experiment.experiment_id, _KIND_TAG, _KIND[_KIND_TAG])
        return str(experiment.experiment_id)

    def claim_trial_run(self, number: int, run_id: str) -> str:
        """Claim ``run_id`` as the run of trial ``number``; return the run claimed (an earlier
        claim wins)."""
        self.connect(reload=False)
        key = f"{self._prefix}{TRIAL_CLAIM}{number}"
        return str(claim(self.study, key, run_id))

    def search(self, filter_string: str) -> list[Run]:
        """Every active run of the experiment matching ``filter_string``."""
        self.connect(reload=False)
        return self._search(filter_string)

    def _search(self, filter_string: str) -> list[Run]:
        assert self._experiment_id is not None
        runs: list[Run] = []
        token = None
        while True:
            page = self.client.search_runs(
                [self._experiment_id], filter_string, max_results=_PAGE, page_token=token
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def _earliest(self, filter_string: str) -> str | None:
        runs = self._search(filter_string)
        runs.sort(key=lambda run: (run.info.start_time, run.info.run_id))
        return runs[0].info.run_id if runs else None

    def _claims(self) -> dict[str, str]:
        return claims(self.study, self._prefix)

    def _claimed_run(
        self,
        name: str,
        found: str | None,
        *,
        tags: dict[str, str],
        run_name: str,
        start_time: int,
    ) -> tuple[str, bool]:
        """The run claimed as ``name`` in the study's storage; return it and whether this call
        created it. Unclaimed, it is claimed with ``found`` (a run already in MLflow) or with a
        new run. A worker whose new run loses the claim deletes it, so of workers racing to
        create the same run, all use the first claimed and none leaves a copy."""
        assert self._experiment_id is not None
        key = self._prefix + name
        existing = self._claims().get(key)
        if existing is not None:
            return existing, False
        created = None
        if found is None:
            created = found = self.client.create_run(
                self._experiment_id,
                start_time=start_time,
                tags={**provenance_tags(), **tags},
                run_name=run_name,
            ).info.run_id
        winner = str(claim(self.study, key, found))
        if created is not None and winner != created:
            self.client.delete_run(created)
        return winner, created is not None and winner == created

    def _trial_run(self, number: int, start: datetime.datetime | None) -> tuple[_TrialRun, bool]:
        """The run of trial ``number`` and whether this call created it."""
        with self._lock:
            if number in self._runs:
                return self._runs[number], False
            parent = self.connect() if self._parent_id is None else self._parent_id
            if number in self._runs:
                return self._runs[number], False
            run_id, created = self._claimed_run(
                f"{TRIAL_CLAIM}{number}",
                self._unclaimed.pop(number, None),
                tags={
                    ROLE_TAG: "trial",
                    STUDY_TAG: self.study.study_name,
                    TRIAL_TAG: str(number),
                    PARENT_TAG: parent,
                    STATE_TAG: TrialState.RUNNING.name,
                },
                run_name=trial_run_name(self.study.study_name, number),
                start_time=millis(start),
            )
            self._runs[number] = _TrialRun(run_id)
            return self._runs[number], created

    # -- writing -------------------------------------------------------------------------------

    def log_step(
        self, trial: optuna.Trial, key: str, value: float, step: int, timestamp: int
    ) -> None:
        """Send one training-curve point of a running trial to its run (created if needed)."""
        run, _ = self._trial_run(trial.number, trial.datetime_start)
        self.client.log_metric(run.run_id, key, value, timestamp=timestamp, step=step)
        run.live_steps.add((key, step))

    def trial_run_id(self, trial: optuna.Trial) -> str:
        """The run id of a running ``trial`` (its run is created if needed)."""
        run, _ = self._trial_run(trial.number, trial.datetime_start)
        return run.run_id

    def write_trial(self, trial: FrozenTrial) -> bool:
        """Write everything about ``trial``; return whether its run was created by this call."""
        run, created = self._trial_run(trial.number, trial.datetime_start)
        record = trial_record(trial, self.metric_names, skip_steps=run.live_steps)
        self.client.log_batch(run.run_id, metrics=record.metrics[:1000], params=record.params)
        for start in range(1000, len(record.metrics), 1000):
            self.client.log_batch(run.run_id, metrics=record.metrics[start : start + 1000])
        for start in range(0, len(record.tags), 100):
            self.client.log_batch(run.run_id, tags=record.tags[start : start + 100])
        if record.architecture is not None:
            self.client.log_dict(run.run_id, record.architecture, "architecture.json")
        if record.status != "RUNNING":
            self.client.set_terminated(run.run_id, record.status, end_time=record.end_time)
            self.client.set_tag(run.run_id, SYNCED_TAG, trial.state.name)
            run.synced = trial.state.name
        return created

    def sync(self) -> SyncResult:
        """Bring every trial of the study up to date in MLflow (finished ones only once)."""
        parent = self.connect()
        created = updated = unchanged = 0
        for trial in self.study.get_trials(deepcopy=False):
            if trial.state == TrialState.WAITING:
                continue
            with self._lock:
                known = self._runs.get(trial.number)
            if known is not None and known.synced == trial.state.name:
                unchanged += 1
            elif self.write_trial(trial):
                created += 1
            else:
                updated += 1
        assert self._experiment_id is not None
        return SyncResult(self._experiment_id, parent, created, updated, unchanged)

    def tag_pareto(self, complete: Sequence[int], members: set[int]) -> None:
        """Tag the run of each trial in ``complete`` ``pareto=true`` or ``false`` (if changed)."""
        for number in complete:
            with self._lock:
                run = self._runs.get(number)
            wanted = "true" if number in members else "false"
            if run is not None and run.pareto != wanted:
                self.client.set_tag(run.run_id, PARETO_TAG, wanted)
                run.pareto = wanted
