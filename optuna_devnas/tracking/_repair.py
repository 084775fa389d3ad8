"""Removing the duplicate runs that versions before the storage claims left in MLflow.

Workers that started tracking one study at the same instant could each create a parent run
(with ids of their own or a shared one) and a run per trial under it. :func:`remove_duplicates`
keeps one parent and one run per trial and deletes the rest (MLflow's soft delete: the runs
leave the runs table and can be restored or purged with ``mlflow gc``). What the kept runs lack
is written by the sync that follows, from the Optuna storage, which holds everything.

Which runs are copies of this study:

- parent runs tagged with the study's ``devnas.study_uid``;
- parent runs of the same study name with another id, when one of their trial runs started at
  the same millisecond as the trial of that number in this study (runs are created with the
  trial's start time), which a different study that reused the name does not do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optuna_devnas.tracking._mirror import study_uid
from optuna_devnas.tracking._records import (
    PARENT_TAG,
    ROLE_TAG,
    STUDY_TAG,
    STUDY_UID_TAG,
    SYNCED_TAG,
    TRIAL_TAG,
    millis,
)

if TYPE_CHECKING:
    from mlflow.entities import Run

    from optuna_devnas.tracking._mirror import StudyMirror


def remove_duplicates(mirror: StudyMirror) -> int:
    """Keep one parent run and one run per trial of ``mirror``'s study; return how many runs
    were deleted. Kept trial runs are moved under the kept parent and claimed."""
    parent = mirror.connect()
    extra = _duplicate_parents(mirror, parent)
    by_number: dict[int, list[Run]] = {}
    for owner in [parent, *extra]:
        for run in mirror.search(f"tags.`{PARENT_TAG}` = '{owner}'"):
            number = int(run.data.tags.get(TRIAL_TAG, -1))
            if number >= 0:
                by_number.setdefault(number, []).append(run)
    deleted = 0
    for number, runs in sorted(by_number.items()):
        # Prefer a run under the kept parent, then one written in full, then the earliest.
        runs.sort(
            key=lambda run: (
                run.data.tags.get(PARENT_TAG) != parent,
                run.data.tags.get(SYNCED_TAG) is None,
                run.info.start_time,
                run.info.run_id,
            )
        )
        keep = mirror.claim_trial_run(number, runs[0].info.run_id)
        for run in runs:
            if run.info.run_id != keep:
                mirror.client.delete_run(run.info.run_id)
                deleted += 1
            elif run.data.tags.get(PARENT_TAG) != parent:
                mirror.client.set_tag(keep, PARENT_TAG, parent)
    for owner in extra:
        mirror.client.delete_run(owner)
        deleted += 1
    mirror.connect()  # reload the runs as they are now
    return deleted


def _duplicate_parents(mirror: StudyMirror, parent: str) -> list[str]:
    uid = study_uid(mirror.study)
    starts = {
        trial.number: millis(trial.datetime_start)
        for trial in mirror.study.get_trials(deepcopy=False)
        if trial.datetime_start is not None
    }
    same_name = mirror.search(
        f"tags.`{ROLE_TAG}` = 'study' and tags.`{STUDY_TAG}` = '{mirror.study.study_name}'"
    )
    duplicates = []
    for run in same_name:
        if run.info.run_id == parent:
            continue
        if run.data.tags.get(STUDY_UID_TAG) == uid or any(
            starts.get(int(child.data.tags.get(TRIAL_TAG, -1))) == child.info.start_time
            for child in mirror.search(f"tags.`{PARENT_TAG}` = '{run.info.run_id}'")
        ):
            duplicates.append(run.info.run_id)
    return duplicates
