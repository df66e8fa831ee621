from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opplan.planning import INITIAL, GraphError, TrainingState, TransitionGraph

S = TrainingState
LENGTHS, LRS = [16, 32, 64], [0.01, 0.001, 0.0001]


@pytest.mark.parametrize("kind, n_edges", [("basic", 14), ("extended", 18)])
def test_paper_edge_counts_per_sampling(kind, n_edges):
    g = TransitionGraph.build(kind, ["uniform"], LENGTHS, LRS)
    assert len(g.edges) == n_edges
    g2 = TransitionGraph.build(kind, ["consecutive", "uniform"], LENGTHS, LRS)
    assert len(g2.edges) == 2 * n_edges
    assert len(g2.states) == 18


def test_rules_of_the_basic_graph():
    g = TransitionGraph.build("basic", ["uniform", "consecutive"], LENGTHS, LRS)
    # the initial state starts at the highest lr with the two shortest clips
    assert set(g.successors(INITIAL)) == {
        S(s, length, 0.01) for s in ("uniform", "consecutive") for length in (16, 32)
    }
    for src, dst in g.edges:
        if src.is_initial:
            continue
        assert src.sampling == dst.sampling  # samplings never mix
        longer = dst.clip_length > src.clip_length and dst.lr == src.lr
        lower = dst.lr < src.lr and dst.clip_length == src.clip_length
        assert longer != lower
        i, j = LENGTHS.index(src.clip_length), LRS.index(src.lr)
        assert (LENGTHS.index(dst.clip_length), LRS.index(dst.lr)) in {(i + 1, j), (i, j + 1)}
    assert g.finals == (S("consecutive", 64, 0.0001), S("uniform", 64, 0.0001))


def test_extended_adds_shorter_and_lower_at_once():
    basic = set(TransitionGraph.build("basic", ["uniform"], LENGTHS, LRS).edges)
    extended = set(TransitionGraph.build("extended", ["uniform"], LENGTHS, LRS).edges)
    extra = extended - basic
    assert basic < extended
    assert extra == {
        (S("uniform", 32, 0.01), S("uniform", 16, 0.001)),
        (S("uniform", 64, 0.01), S("uniform", 32, 0.001)),
        (S("uniform", 32, 0.001), S("uniform", 16, 0.0001)),
        (S("uniform", 64, 0.001), S("uniform", 32, 0.0001)),
    }


def test_unsorted_inputs_give_the_same_graph():
    a = TransitionGraph.build("extended", ["uniform"], [64, 16, 32], [0.0001, 0.01, 0.001])
    b = TransitionGraph.build("extended", ["uniform"], LENGTHS, LRS)
    assert a.edges == b.edges and a.topological_order() == b.topological_order()


@given(
    kind=st.sampled_from(["basic", "extended"]),
    n_len=st.integers(1, 5),
    n_lr=st.integers(1, 5),
    two=st.booleans(),
)
def test_topological_order_and_validity(kind, n_len, n_lr, two):
    lengths = [8 * 2**i for i in range(n_len)]
    lrs = [10.0**-i for i in range(n_lr)]
    samplings = ["consecutive", "uniform"] if two else ["uniform"]
    if n_len == 1 and n_lr == 1:
        g = TransitionGraph.build(kind, samplings, lengths, lrs)
        assert len(g.edges) == len(samplings)
        return
    g = TransitionGraph.build(kind, samplings, lengths, lrs)
    order = g.topological_order()
    position = {s: k for k, s in enumerate(order)}
    assert order[0] == INITIAL and len(order) == 1 + len(samplings) * n_len * n_lr
    assert all(position[a] < position[b] for a, b in g.edges)
    per_sampling = 2 * n_len * n_lr - n_len - n_lr + min(2, n_len)
    if kind == "extended":
        per_sampling += (n_len - 1) * (n_lr - 1)
    assert len(g.edges) == len(samplings) * per_sampling


def test_from_edges_text_and_mappings():
    g = TransitionGraph.from_edges(
        [
            ["initial", "uniform 16f lr=0.01"],
            {"from": "uniform 16f lr=0.01", "to": "uniform 32f lr=0.01"},
            ["uniform 16f lr=0.01", "uniform 16f lr=0.001"],
            ["uniform 32f lr=0.01", "uniform 32f lr=0.001"],
            ["uniform 16f lr=0.001", "uniform 32f lr=0.001"],
        ]
    )
    assert g.finals == (S("uniform", 32, 0.001),)
    assert len(g.edges) == 5


def test_from_edges_with_extra_axes():
    g = TransitionGraph.from_edges(
        [
            ["initial", "uniform 16f lr=0.1 size=112"],
            ["uniform 16f lr=0.1 size=112", "uniform 16f lr=0.1 size=224"],
        ]
    )
    assert g.finals[0].extra == (("size", 224),)


@pytest.mark.parametrize(
    "edges, message",
    [
        (
            [
                ["initial", "uniform 8f lr=0.1"],
                ["uniform 8f lr=0.1", "uniform 16f lr=0.1"],
                ["uniform 16f lr=0.1", "uniform 8f lr=0.1"],
            ],
            "cycle through state uniform 8f lr=0.1",
        ),
        (
            [["initial", "uniform 8f lr=0.1"], ["uniform 16f lr=0.1", "uniform 8f lr=0.1"]],
            "uniform 16f lr=0.1 is not reachable",
        ),
        ([["initial", "uniform 8f lr=0.1"], ["uniform 8f lr=0.1", "initial"]], "into the initial"),
        ([["initial", "uniform 8 lr=0.1"]], r"edges\[0\]: cannot parse"),
        ([["initial"]], r"edges\[0\]"),
    ],
)
def test_invalid_graphs_name_the_state(edges, message):
    with pytest.raises(GraphError, match=message):
        TransitionGraph.from_edges(edges)


def test_state_that_cannot_finish():
    edges = [
        ["initial", "uniform 8f lr=0.1"],
        ["uniform 8f lr=0.1", "uniform 16f lr=0.1"],
        ["uniform 8f lr=0.1", "uniform 8f lr=0.01"],
    ]
    with pytest.raises(GraphError, match=r"uniform 8f lr=0\.01 cannot reach any final"):
        TransitionGraph.from_edges(edges, finals=["uniform 16f lr=0.1"])


def test_build_rejects_bad_axes():
    with pytest.raises(GraphError, match="duplicates"):
        TransitionGraph.build("basic", ["uniform"], [8, 8], [0.1])
    with pytest.raises(GraphError, match="unknown sampling"):
        TransitionGraph.build("basic", ["dense"], [8], [0.1])
    with pytest.raises(GraphError, match="kind"):
        TransitionGraph.build("wide", ["uniform"], [8], [0.1])  # type: ignore[arg-type]
