"""The config schema. Every field is documented; ``extra="forbid"`` everywhere."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from opplan.config._executor import ExecutorConfig
from opplan.config._python import PythonTrainerConfig
from opplan.config._video import VideoTrainerConfig
from opplan.planning.axes import ExtraAxis
from opplan.planning.curves import FamilyName
from opplan.planning.graph import TransitionGraph
from opplan.planning.planner import PlannerOptions
from opplan.planning.state import SAMPLINGS, Sampling

__all__ = [
    "ExtraAxisConfig",
    "GraphConfig",
    "PlanConfig",
    "PlannerConfig",
    "SimulatedTrainerConfig",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExtraAxisConfig(_Strict):
    """One more ordered axis of a built graph (beyond the paper; opplan.planning.axes)."""

    name: str = Field(description="the axis in state names, e.g. size (the crop size)")
    values: list[StrictInt | StrictFloat | StrictStr] = Field(
        description="in the order training moves through them; the first is where it starts"
    )
    decrease_with_lr: bool = Field(
        False, description="also move one step back together with one step lower lr"
    )


class GraphConfig(_Strict):
    """The candidate transition graph (§3.2)."""

    kind: Literal["basic", "extended", "explicit"] = Field(
        "extended", description="basic/extended graph of Fig. 1, or an explicit edge list"
    )
    samplings: list[Sampling] = Field(
        default_factory=lambda: list(SAMPLINGS), description="frame samplings"
    )
    clip_lengths: list[PositiveInt] = Field(
        default_factory=lambda: [16, 32, 64], description="candidate clip lengths l1 < l2 < ..."
    )
    learning_rates: list[Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(
        default_factory=lambda: [0.04, 0.004, 0.0004], description="candidate learning rates"
    )
    edges: list[tuple[str, str]] | None = Field(
        None,
        description="kind=explicit: [from, to] pairs such as ['initial', 'uniform 16f lr=0.01']",
    )
    finals: list[str] | None = Field(
        None, description="kind=explicit: final states (default: states with no way out)"
    )
    extra_axes: list[ExtraAxisConfig] = Field(
        default_factory=list,
        description="basic/extended: further ordered axes such as {name: size, values: [112, "
        "160]}; each state holds one value of each, moves go one step up (beyond the paper)",
    )

    @model_validator(mode="after")
    def _explicit_needs_edges(self) -> GraphConfig:
        if self.kind == "explicit" and not self.edges:
            raise ValueError("kind 'explicit' needs a non-empty 'edges' list")
        if self.kind != "explicit" and (self.edges is not None or self.finals is not None):
            raise ValueError(
                f"'edges'/'finals' are only used with kind 'explicit', not {self.kind!r}"
            )
        axes = sorted(
            {"samplings", "clip_lengths", "learning_rates", "extra_axes"} & self.model_fields_set
        )
        if self.kind == "explicit" and axes:  # they would be silently ignored
            raise ValueError(
                f"{'/'.join(axes)}: not used with kind 'explicit' (its edges name every "
                "state); remove them"
            )
        return self

    def axes(self) -> tuple[list[str], list[int], list[float]]:
        """(samplings, clip lengths, learning rates) of the graph's states: the fields, or
        for an explicit graph those its edges use (what ``grid``/``baseline`` search)."""
        if self.kind != "explicit":
            return list(self.samplings), list(self.clip_lengths), list(self.learning_rates)
        states = [s for s in self.build().states if not s.is_initial]
        return (
            sorted({s.sampling for s in states}),
            sorted({s.clip_length for s in states}),
            sorted({s.lr for s in states}, reverse=True),
        )

    def build(self) -> TransitionGraph:
        if self.kind == "explicit":
            assert self.edges is not None
            return TransitionGraph.from_edges(self.edges, self.finals)
        axes = [ExtraAxis(a.name, a.values, a.decrease_with_lr) for a in self.extra_axes]
        return TransitionGraph.build(
            self.kind, self.samplings, self.clip_lengths, self.learning_rates, extra_axes=axes
        )


_OPTIONS = PlannerOptions()  # the planner's defaults


class PlannerConfig(_Strict):
    """Knee stopping (§3.3) and the value of a transition: the YAML side of
    :class:`~opplan.planning.PlannerOptions`, whose defaults these are (one definition)."""

    family: FamilyName = Field(_OPTIONS.family, description="Table 1 curve family")
    delay: Annotated[int, Field(ge=0)] = Field(
        _OPTIONS.delay, description="T: epochs tried after the knee"
    )
    max_epochs: PositiveInt = Field(
        _OPTIONS.max_epochs, description="cap on the epochs of one transition"
    )
    value: Literal["fitted", "observed"] = Field(
        _OPTIONS.value, description="edge value: fitted peak, or observed score at the knee epoch"
    )
    keep_checkpoints: bool = Field(
        _OPTIONS.keep_checkpoints, description="keep every epoch's checkpoint"
    )
    min_epochs: Annotated[int, Field(ge=0)] = Field(
        _OPTIONS.min_epochs,
        description="no transition stops before this epoch (0: the paper's rule)",
    )
    min_epochs_from_initial: Annotated[int, Field(ge=0)] = Field(
        _OPTIONS.min_epochs_from_initial,
        description="the same floor for transitions from the initialization only",
    )
    min_rise_from_initial: Annotated[float, Field(ge=0)] = Field(
        _OPTIONS.min_rise_from_initial,
        description="beyond the paper (0 = off): a transition from the initialization accepts "
        "a knee only once its fitted curve has risen this many fit RMSEs above its epoch-1 "
        "value; a curve still flat at chance runs on to max_epochs",
    )
    prune: bool = Field(
        _OPTIONS.prune,
        description="beyond the paper: abandon a transition whose optimistic bound cannot beat "
        "the best value already known for its destination",
    )
    prune_margin: Annotated[float, Field(ge=0)] = Field(
        _OPTIONS.prune_margin,
        description="slack added to the optimistic bound when pruning (score units)",
    )
    rule: Literal["paper", "noise"] = Field(
        _OPTIONS.rule,
        description="paper: stop at t >= t* + delay (§3.3); noise (beyond the paper): stop once "
        "the fitted curve's remaining gain over the budget is below the evaluation noise, go on "
        "while a dip recovers, never end at knee 0 on a first-epoch dip (delay unused)",
    )
    noise: Annotated[float, Field(gt=0)] | None = Field(
        None,
        description="noise rule: std of one evaluation (score units); default: the simulated "
        "trainer's noise, or binomial on the internal validation split's videos",
    )
    noise_z: Annotated[float, Field(gt=0)] = Field(
        _OPTIONS.noise_z,
        description="noise rule: noise stds a remaining gain or a recovering rise must exceed",
    )
    noise_patience: PositiveInt = Field(
        _OPTIONS.noise_patience,
        description="noise rule: consecutive quiet epochs before a transition stops",
    )
    noise_window: PositiveInt = Field(
        _OPTIONS.noise_window,
        description="noise rule: epochs over which a recovering rise is measured",
    )

    race: bool = Field(
        _OPTIONS.race,
        description="beyond the paper: race the moves into one state (successive halving): "
        "they pause at epochs race_rung * race_growth**k until all got there, and one whose "
        "optimistic bound is below the leader's pessimistic value is abandoned; deterministic",
    )
    race_rung: PositiveInt = Field(
        _OPTIONS.race_rung, description="racing: the first rung (epochs)"
    )
    race_growth: Annotated[float, Field(ge=1)] = Field(
        _OPTIONS.race_growth,
        description="racing: each rung is this many times the previous one (1: every epoch)",
    )
    race_margin: Annotated[float, Field(ge=0)] = Field(
        _OPTIONS.race_margin, description="racing: noise margin of the bounds (score units)"
    )
    defer: bool = Field(
        _OPTIONS.defer,
        description="beyond the paper: a move whose prior bound (source value + the largest "
        "gain of a finished move of its kind upstream) is below a sibling's source value waits "
        "for its siblings, and is skipped (journaled as deferred) if still below what they got",
    )
    defer_margin: Annotated[float, Field(ge=0)] = Field(
        _OPTIONS.defer_margin, description="deferring: noise margin of the bounds (score units)"
    )
    score_start: bool = Field(
        _OPTIONS.score_start,
        description="beyond the paper: score each move's starting model in the new state (one "
        "evaluation after start) and use it as y0, instead of the source's score in its own "
        "state; a clip-length change loses points before any step, which hides as a first-epoch "
        "dip otherwise",
    )
    branches: bool = Field(
        _OPTIONS.branches,
        description="beyond the paper: once the moves from the initial state have ended, skip "
        "every other move of a branch (a sampling) whose best first move is more than "
        "branch_margin below the best branch's (a heuristic, not a bound)",
    )
    branch_margin: Annotated[float, Field(ge=0)] = Field(
        _OPTIONS.branch_margin,
        description="branches: how far below the leading branch's best first move a branch "
        "may be and still be explored (score units)",
    )

    def options(self, noise: float = 0.0, eval_count: int = 0) -> PlannerOptions:
        """The planner's options; ``noise``/``eval_count`` are the trainer's evaluation noise
        (std, or validation videos) used by the noise rule when ``noise`` is not set here."""
        data = self.model_dump()
        data["noise"] = self.noise if self.noise is not None else noise
        return PlannerOptions(**data, eval_count=eval_count)


_SAMPLING_GAIN: dict[Sampling, float] = {"consecutive": 0.03, "uniform": 0.0}


class SimulatedTrainerConfig(_Strict):
    """Score curves from known functions plus seeded noise (``opplan.planning.simulate``)."""

    kind: Literal["simulated"] = "simulated"
    landscape: Literal["default", "random"] = Field(
        "default", description="paper-like curves, or curve parameters drawn per edge"
    )
    seed: int = Field(0, description="seed of the noise (and of the random landscape)")
    noise: Annotated[float, Field(ge=0)] = Field(0.01, description="std of one evaluation")
    epoch_delay: Annotated[float, Field(ge=0)] = Field(
        0.0, description="seconds slept per epoch at the reference clip length"
    )
    sampling_gain: dict[Sampling, float] = Field(
        default_factory=lambda: dict(_SAMPLING_GAIN),
        description="default landscape: extra gain of each sampling",
    )


TrainerConfig = Annotated[
    SimulatedTrainerConfig | VideoTrainerConfig | PythonTrainerConfig, Field(discriminator="kind")
]


class PlanConfig(_Strict):
    """A whole ``opplan plan`` run."""

    name: str = Field("plan", description="a label for the run")
    graph: GraphConfig = Field(default_factory=GraphConfig)
    planner: PlannerConfig = Field(default_factory=PlannerConfig)
    trainer: TrainerConfig = Field(default_factory=SimulatedTrainerConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)

    def planner_options(self, eval_count: int = 0) -> PlannerOptions:
        """The planner's options with the trainer's evaluation noise for the noise rule: the
        simulated trainer's std, or binomial on ``eval_count`` internal validation videos."""
        trainer = self.trainer
        noise = trainer.noise if isinstance(trainer, SimulatedTrainerConfig) else 0.0
        return self.planner.options(noise, eval_count)

    @model_validator(mode="after")
    def _noise_known(self) -> PlanConfig:
        trainer = self.trainer
        if (
            self.planner.rule == "noise"
            and self.planner.noise is None
            and isinstance(trainer, SimulatedTrainerConfig)
            and trainer.noise == 0
        ):
            raise ValueError(
                "planner.rule noise needs planner.noise: the simulated trainer has noise 0"
            )
        return self
