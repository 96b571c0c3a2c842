"""Reading an InferenceService's status as KServe writes it: revisions, traffic, failures
and the deployment mode, with the quirks (FACTS.md section 3)."""

from __future__ import annotations

import pytest

from genai_gate.backends.kserve.isvc import (
    Service,
    new_revision_progress,
    starting,
    traffic_progress,
)
from tests.kserve_cases import manifest, rev, split


def test_a_canary_reads_as_two_revisions_with_their_shares() -> None:
    svc = Service.from_manifest(
        manifest(canary=10, generation=2, created=2, ready=2, rolled_out=1, traffic=split(2, 10, 1))
    )
    assert svc.routes() == {rev(2): 10, rev(1): 90}
    assert svc.canary_percent == 10
    assert "canaryTrafficPercent" not in svc.predictor
    latest = svc.latest_target()
    assert latest is not None and latest.revision == rev(2) and latest.percent == 10


def test_the_old_revision_named_twice_while_the_new_one_starts_counts_once() -> None:
    # Knative routes the latestRevision target to the last READY revision: r1 twice
    traffic = [
        {"revisionName": rev(1), "latestRevision": True, "percent": 10},
        {"revisionName": rev(1), "latestRevision": False, "percent": 90, "tag": "prev"},
    ]
    svc = Service.from_manifest(
        manifest(canary=10, generation=2, created=2, ready=1, rolled_out=1, traffic=traffic)
    )
    assert svc.routes() == {rev(1): 100}
    assert starting(svc)
    progress = new_revision_progress(svc, before_created=rev(1))
    assert progress.phase == "waiting" and progress.revision == rev(2)


@pytest.mark.parametrize("observed", [1, 3, 7], ids=["behind", "caught-up", "ahead"])
def test_readiness_is_judged_by_revision_names_not_observed_generation(observed: int) -> None:
    # kserve#6081: status.observedGeneration is the Knative Service's; it may run ahead of
    # metadata.generation or never catch up. Only the names say whether r2 serves.
    waiting = Service.from_manifest(manifest(generation=3, observed=observed, created=1, ready=1))
    assert new_revision_progress(waiting, before_created=rev(1)).phase == "waiting"
    ready = Service.from_manifest(
        manifest(
            canary=10,
            generation=3,
            observed=observed,
            created=2,
            ready=2,
            rolled_out=1,
            traffic=split(2, 10, 1),
        )
    )
    progress = new_revision_progress(ready, before_created=rev(1))
    assert progress.phase == "ready" and progress.revision == rev(2)


def test_a_failed_revision_reports_the_cause_from_predictor_ready() -> None:
    message = f'Revision "{rev(2)}" failed with message: Back-off pulling image "bad:tag".'
    conditions = [
        {"type": "IngressReady", "status": "True"},
        {
            "type": "PredictorReady",
            "status": "False",
            "reason": "RevisionFailed",
            "message": message,
        },
        # v0.20 copies it onto Ready too; the cause is read from PredictorReady either way
        {"type": "Ready", "status": "False", "reason": "Other", "message": "something else"},
    ]
    svc = Service.from_manifest(
        manifest(
            canary=10,
            generation=2,
            created=2,
            ready=1,
            rolled_out=1,
            conditions=conditions,
            traffic=[
                {"revisionName": rev(1), "latestRevision": True, "percent": 10},
                {"revisionName": rev(1), "percent": 90, "tag": "prev"},
            ],
        )
    )
    progress = new_revision_progress(svc, before_created=rev(1))
    assert progress.phase == "failed"
    assert progress.revision == rev(2)
    assert progress.detail == f"RevisionFailed: {message}"
    assert not starting(svc)  # it ended: someone else's deploy need not be waited for


def test_a_first_revision_that_fails_reports_the_configuration_s_cause() -> None:
    """No revision was ever ready: PredictorReady carries the route's RevisionMissing, the
    revision's own failure is on PredictorConfigurationReady (FACTS.md section 3)."""
    cause = f'Revision "{rev(1)}" failed with message: the bucket is empty.'
    conditions = [
        {
            "type": "PredictorConfigurationReady",
            "status": "False",
            "reason": "RevisionFailed",
            "message": cause,
        },
        {
            "type": "PredictorReady",
            "status": "False",
            "reason": "RevisionMissing",
            "message": 'Configuration "bot-predictor" does not have any ready Revision.',
        },
    ]
    svc = Service.from_manifest(
        manifest(created=1, ready=None, rolled_out=None, conditions=conditions, traffic=[])
    )
    progress = new_revision_progress(svc, before_created=None)
    assert progress.phase == "failed" and progress.revision == rev(1)
    assert progress.detail == f"RevisionFailed: {cause}"


def test_a_failure_of_an_older_revision_is_not_the_new_one_s() -> None:
    conditions = [{"type": "PredictorReady", "status": "False", "reason": "RevisionFailed"}]
    svc = Service.from_manifest(manifest(created=1, ready=1, conditions=conditions))
    assert new_revision_progress(svc, before_created=rev(1)).phase == "waiting"


def test_traffic_progress_waits_for_the_asked_share() -> None:
    svc = Service.from_manifest(
        manifest(canary=50, created=2, ready=2, rolled_out=1, traffic=split(2, 10, 1))
    )
    moving = traffic_progress(svc, 50)
    assert moving.phase == "waiting" and "10%" in moving.detail
    done = Service.from_manifest(
        manifest(canary=50, created=2, ready=2, rolled_out=1, traffic=split(2, 50, 1))
    )
    assert traffic_progress(done, 50).phase == "ready"


@pytest.mark.parametrize(
    ("status_mode", "annotation", "refused"),
    [
        ("Knative", None, None),
        ("Serverless", None, None),
        ("Standard", None, "Standard"),
        ("RawDeployment", None, "RawDeployment"),
        ("ModelMesh", None, "ModelMesh"),
        (None, "RawDeployment", "RawDeployment"),
        ("Knative", "RawDeployment", None),  # the resolved mode in the status wins
    ],
)
def test_modes_without_revisions_are_refused(
    status_mode: str | None, annotation: str | None, refused: str | None
) -> None:
    annotations = {"serving.kserve.io/deploymentMode": annotation} if annotation else None
    svc = Service.from_manifest(manifest(mode=status_mode, annotations=annotations))
    assert svc.mode_refusal() == refused


def test_a_raw_deployment_status_has_no_revisions_and_is_refused() -> None:
    svc = Service.from_manifest(
        manifest(mode="Standard", created=None, ready=None, rolled_out=None, traffic=None)
    )
    assert svc.routes() == {}
    assert svc.mode_refusal() == "Standard"


def test_an_older_kserve_without_a_mode_but_with_revisions_is_serverless() -> None:
    svc = Service.from_manifest(manifest(mode=None))
    assert svc.mode_refusal() is None
