from __future__ import annotations

import pytest
import torch

from optuna_devnas._errors import InputShapeError
from optuna_devnas.instanas import MetaGraph, child_to_policy, policy_to_child
from optuna_devnas.instanas._options import BASIC_OPTION


@pytest.fixture(scope="module")
def meta_graph() -> MetaGraph:
    torch.manual_seed(0)
    model = MetaGraph(num_classes=10, input_shape=(3, 8, 8), width_mult=0.25)
    # Nonzero last scales, so residual options change the output (they start at zero).
    for parameter in model.parameters():
        parameter.data.add_(0.1 * torch.randn_like(parameter))
    return model.eval()


def test_empty_shape_changing_blocks_fall_back_to_the_basic_block(meta_graph: MetaGraph) -> None:
    policy = meta_graph.normalize(torch.zeros(2, 17, 5))
    changes = meta_graph.changes_shape
    assert policy[:, changes, BASIC_OPTION].all()
    assert policy.sum() == 2 * int(changes.sum())
    assert torch.equal(meta_graph.reference_policy("min"), policy[0])
    assert meta_graph.reference_policy("mbv2")[:, 0].all()
    assert meta_graph.reference_policy("all").all()


def test_per_image_policies_match_running_each_images_child(meta_graph: MetaGraph) -> None:
    torch.manual_seed(1)
    x = torch.randn(6, 3, 8, 8)
    policy = meta_graph.normalize(torch.rand(6, 17, 5) < 0.4)
    with torch.no_grad():
        batched = meta_graph(x, policy)
        one_by_one = torch.cat(
            [meta_graph.forward_child(x[i : i + 1], policy_to_child(policy[i])) for i in range(6)]
        )
    assert torch.allclose(batched, one_by_one, atol=1e-5)


def test_unselected_options_are_not_run(meta_graph: MetaGraph) -> None:
    calls: list[int] = []
    options = meta_graph.meta_blocks[5].options
    hooks = [
        option.register_forward_hook(lambda module, i, o, k=k: calls.append(k))
        for k, option in enumerate(options)
    ]
    try:
        policy = torch.zeros(4, 17, 5, dtype=torch.bool)
        policy[1, 5, 2] = True
        with torch.no_grad():
            meta_graph(torch.randn(4, 3, 8, 8), policy)
    finally:
        for hook in hooks:
            hook.remove()
    assert calls == [2]


def test_a_block_with_nothing_selected_is_the_identity(meta_graph: MetaGraph) -> None:
    block = meta_graph.meta_blocks[2]  # keeps the shape
    assert not block.spec.changes_shape
    x = torch.randn(3, block.spec.in_channels, *block.spec.input_size)
    assert torch.equal(block(x, torch.zeros(3, 5, dtype=torch.bool)), x)
    assert torch.equal(block.forward_options(x, ()), x)


def test_children_and_policies_round_trip(meta_graph: MetaGraph) -> None:
    policy = meta_graph.normalize(torch.rand(1, 17, 5) < 0.5)[0]
    child = policy_to_child(policy)
    assert len(child) == 17 and all(isinstance(options, tuple) for options in child)
    assert torch.equal(child_to_policy(child), policy)


def test_wrong_shapes_are_refused(meta_graph: MetaGraph) -> None:
    with pytest.raises(InputShapeError, match=r"\(batch, 3, 8, 8\)"):
        meta_graph(torch.randn(2, 3, 16, 16))
    with pytest.raises(InputShapeError, match="policy"):
        meta_graph(torch.randn(2, 3, 8, 8), torch.ones(2, 16, 5))
    with pytest.raises(ValueError, match="num_classes=1"):
        MetaGraph(num_classes=1)
