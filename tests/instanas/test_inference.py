from __future__ import annotations

import json
from pathlib import Path
import statistics

import pytest
import torch

from optuna_devnas.instanas import (
    ChildNetwork,
    Controller,
    InstanceAwareNetwork,
    MetaGraph,
    OptionLatencyTable,
    PolicyExport,
    child_to_policy,
    evaluate_children,
    export_policy,
    measure_per_image_latency,
    policy_to_child,
)


def network(bias: float | None = None) -> InstanceAwareNetwork:
    """A random network; ``bias`` forces every option off (negative) or on (positive)."""
    torch.manual_seed(0)
    meta_graph = MetaGraph(num_classes=10, input_shape=(3, 8, 8), width_mult=0.25)
    controller = Controller(in_channels=3, num_blocks=17, num_options=5, resolution=8, width=8)
    if bias is None:
        torch.nn.init.normal_(controller.fc.weight, 0.0, 1.0)  # image-dependent choices
    else:
        torch.nn.init.zeros_(controller.fc.weight)
        torch.nn.init.constant_(controller.fc.bias, bias)
    return InstanceAwareNetwork(controller=controller, meta_graph=meta_graph).eval()


def test_a_batch_gives_each_image_the_output_of_its_own_child() -> None:
    net = network()
    x = torch.randn(8, 3, 8, 8)
    with torch.no_grad():
        policy = net.policy(x)
        batched = net(x)
        alone = torch.cat([net(x[i : i + 1]) for i in range(8)])
        children = [policy_to_child(p) for p in policy]
        by_child = torch.cat(
            [net.meta_graph.forward_child(x[i : i + 1], children[i]) for i in range(8)]
        )
        net.max_groups = 2  # more children than groups: option by option instead
        by_option = net(x)
    assert len(set(children)) > 2  # several children in the batch
    assert torch.allclose(batched, alone, atol=1e-5)
    assert torch.allclose(batched, by_child, atol=1e-5)
    assert torch.allclose(by_option, by_child, atol=1e-5)


def test_policy_export_counts_children(tmp_path: Path) -> None:
    net = network()
    x = torch.randn(20, 3, 8, 8)
    export = export_policy(net, x, batch_size=7)
    assert sum(export.counts) == 20 and len(export.assignment) == 20
    assert list(export.counts) == sorted(export.counts, reverse=True)
    with torch.no_grad():
        policy = net.policy(x)
    for i in range(20):
        assert export.children[export.assignment[i]] == policy_to_child(policy[i])
    names = export.child_names(0)
    assert len(names) == 17 and all(isinstance(n, str) for block in names for n in block)
    path = tmp_path / "policy.json"
    export.save(path)
    assert PolicyExport.from_dict(json.loads(path.read_text())) == export


def test_a_sparse_policy_runs_faster_than_the_full_meta_graph() -> None:
    sparse, full = network(bias=-5.0), network(bias=5.0)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert int(sparse.policy(x).sum()) == 2 * int(sparse.meta_graph.changes_shape.sum())
        assert bool(full.policy(x).all())
    times: dict[str, list[float]] = {"sparse": [], "full": []}
    for _ in range(3):  # interleaved, medians: robust to bursts of load from other processes
        for name, net in (("sparse", sparse), ("full", full)):
            times[name].append(measure_per_image_latency(net, x, min_run_time=0.02))
    assert statistics.median(times["sparse"]) < 0.5 * statistics.median(times["full"])


def test_latency_needs_a_batch_of_images() -> None:
    with pytest.raises(ValueError, match="images of shape"):
        measure_per_image_latency(network(), torch.randn(3, 8, 8))


def test_coverage_counts_the_most_used_children_that_serve_a_share() -> None:
    children = tuple(((k,),) for k in range(4))
    export = PolicyExport(children=children, assignment=(0,) * 6 + (1,) * 2 + (2, 3))
    assert export.counts == (6, 2, 1, 1)
    assert export.coverage(0.5) == 1 and export.coverage(0.8) == 2
    assert export.coverage(0.9) == 3 and export.coverage(1.0) == 4
    with pytest.raises(ValueError, match="fraction=0"):
        export.coverage(0)


def test_a_child_alone_matches_the_images_that_chose_it_and_is_scored_on_all(
    fixed_table: OptionLatencyTable,
) -> None:
    net = network()
    x, y = torch.randn(24, 3, 8, 8), torch.randint(0, 10, (24,))
    with torch.no_grad():
        logits = net(x)
    export = export_policy(net, x)
    evaluations = evaluate_children(net, x, y, fixed_table, max_children=3)
    assert [e.child for e in evaluations] == list(export.children[:3])
    assert [e.images for e in evaluations] == list(export.counts[:3])
    for evaluation in evaluations:
        alone = ChildNetwork(meta_graph=net.meta_graph, child=evaluation.child).eval()
        with torch.no_grad():
            own = [
                i
                for i, a in enumerate(export.assignment)
                if export.children[a] == evaluation.child
            ]
            assert torch.allclose(alone(x[own]), logits[own], atol=1e-5)
            wrong = (alone(x).argmax(dim=1) != y).float().mean().item()
        assert evaluation.error == pytest.approx(wrong)
        policy = child_to_policy(evaluation.child)
        assert evaluation.table_latency == pytest.approx(float(fixed_table.predict(policy)))
    with pytest.raises(ValueError, match="child of 2 blocks"):
        ChildNetwork(meta_graph=net.meta_graph, child=((0,), (1,)))
