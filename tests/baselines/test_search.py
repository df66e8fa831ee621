"""``opplan grid --search asha|hyperband|topk``: Optuna's pruners are really called and
prune trials recorded in the study file, a search killed mid-way resumes to the results of
an uninterrupted one, top-k keeps the k best probes, and the costs count every epoch."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from opplan.baselines import GridSpec, grid_cost
from opplan.config import load_config
from opplan.engine.settings import OptimSettings, derive_seed
from opplan.planning.state import TrainingState

from .conftest import write_video_config

optuna = pytest.importorskip("optuna", reason="the searches need the 'hpo' extra (optuna)")

from opplan.baselines._search import run_search  # noqa: E402


class _Dist:
    is_main = True


class FakeTrainer:
    """The recipe protocol of VideoTrainer without a network: a state's 'progress' grows by
    a rate drawn from its name each epoch; the score is ``1 - exp(-progress)``. Checkpoints
    hold the progress, so a resumed run continues exactly."""

    def __init__(self, kill_at: int | None = None) -> None:
        self.dist = _Dist()
        self.optim = OptimSettings()
        self.checkpoint_dir = Path(".")
        self.state: TrainingState | None = None
        self.progress = 0.0
        self.epochs = 0
        self.kill_at = kill_at

    def _read(self, checkpoint: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.checkpoint_dir / f"{checkpoint}.pt").read_text())
        return data

    def start(self, state: TrainingState, previous: str | None) -> None:
        self.state = state
        self.progress = 0.0 if previous is None else self._read(previous)["progress"]

    def resume(self, state: TrainingState, checkpoint: str) -> None:
        assert self._read(checkpoint)["state"] == str(state)
        self.start(state, checkpoint)

    def set_lr(self, lr: float) -> None:
        pass

    def train_epoch(self) -> dict[str, float]:
        self.epochs += 1
        if self.epochs == self.kill_at:
            raise KeyboardInterrupt
        assert self.state is not None
        self.progress += (derive_seed(str(self.state)) % 1000) / 2000
        return {"loss": -self.progress, "lr": self.state.lr}

    def evaluate(self) -> float:
        return 1 - math.exp(-self.progress)

    def save(self, checkpoint: str) -> None:
        path = self.checkpoint_dir / f"{checkpoint}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"progress": self.progress, "state": str(self.state)}))

    def release(self, checkpoint: str) -> None:
        (self.checkpoint_dir / f"{checkpoint}.pt").unlink(missing_ok=True)


@pytest.fixture
def setup(order_videos, tmp_path):
    config = load_config(write_video_config(order_videos, tmp_path / "c.yaml"))
    spec = GridSpec.paper([2, 4], [0.05, 0.005], ["consecutive", "uniform"], [2, 4, 6, 8])
    assert len(spec.schedules) == 2 * 2 * 2 * 4
    return config, spec


def _stable(results: dict[str, Any]) -> dict[str, Any]:
    """results.json without the seconds (wall time differs between runs)."""
    runs = [{k: v for k, v in r.items() if k != "seconds"} for r in results["runs"]]
    cost = {k: v for k, v in results["cost"].items() if k != "wall_seconds"}
    return {**results, "runs": runs, "cost": cost}


@pytest.mark.parametrize(
    ("search", "pruner"), [("asha", "SuccessiveHalvingPruner"), ("hyperband", "HyperbandPruner")]
)
def test_the_library_pruner_decides_and_the_study_records_it(
    setup, tmp_path, monkeypatch, search, pruner
):
    config, spec = setup
    cls = getattr(optuna.pruners, pruner)
    calls: list[int] = []
    original = cls.prune

    def spy(self, study, trial):
        calls.append(trial.number)
        return original(self, study, trial)

    monkeypatch.setattr(cls, "prune", spy)
    out = tmp_path / search
    results = run_search(config, spec, out, search, views=None, trainer=FakeTrainer(), log=str)
    assert calls  # the library's scheduler took the decisions
    study = optuna.load_study(
        study_name="opplan-grid-search",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(out / "study.journal"))
        ),
    )
    states = {t.user_attrs["schedule"]: t.state.name for t in study.trials}
    statuses = {r["schedule"]["name"]: r["status"] for r in results["runs"]}
    assert states == {
        k: {"complete": "COMPLETE", "pruned": "PRUNED"}[v] for k, v in statuses.items()
    }
    assert "PRUNED" in states.values() and "COMPLETE" in states.values()
    for r, schedule in zip(results["runs"], spec.schedules, strict=True):
        if r["status"] == "pruned":
            stopped = json.loads((out / "runs" / schedule.name / "stopped.json").read_text())
            assert r["epochs"] == stopped["epochs"] < schedule.epochs
            frozen = next(t for t in study.trials if t.user_attrs["schedule"] == schedule.name)
            assert max(frozen.intermediate_values) == r["epochs"]
            assert not (out / "runs" / schedule.name / "checkpoints").exists()
        else:
            assert r["epochs"] == schedule.epochs
    assert results["cost"]["epochs"] == sum(r["epochs"] for r in results["runs"])
    assert results["cost"]["epochs"] < sum(s.epochs for s in spec.schedules)
    assert grid_cost(results).epochs == results["cost"]["epochs"]
    best = max(
        (r for r in results["runs"] if r["status"] == "complete"),
        key=lambda r: (r["val_score"], -r["weighted_epochs"]),
    )
    assert results["best"] == best["schedule"]["name"]


@pytest.mark.parametrize(("search", "kill_at"), [("asha", 23), ("hyperband", 31), ("topk", 40)])
def test_a_killed_search_resumes_to_the_uninterrupted_result(setup, tmp_path, search, kill_at):
    config, spec = setup
    reference = run_search(
        config, spec, tmp_path / "ref", search, views=None, trainer=FakeTrainer(), log=str
    )
    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        run_search(config, spec, cut, search, views=None, trainer=FakeTrainer(kill_at), log=str)
    assert not (cut / "results.json").exists()
    with pytest.raises(Exception, match="--resume"):
        run_search(config, spec, cut, search, views=None, trainer=FakeTrainer(), log=str)
    resumed = run_search(
        config, spec, cut, search, resume=True, views=None, trainer=FakeTrainer(), log=str
    )
    assert _stable(resumed) == _stable(reference)
    if search != "topk":
        names = [t.user_attrs["schedule"] for t in _study(cut).trials]
        assert names == [s.name for s in spec.schedules]  # one trial each, the killed reused


def _study(run: Path) -> Any:
    return optuna.load_study(
        study_name="opplan-grid-search",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(run / "study.journal"))
        ),
    )


def test_topk_probes_every_schedule_and_finishes_the_k_best(setup, tmp_path):
    config, spec = setup
    results = run_search(
        config,
        spec,
        tmp_path / "k",
        "topk",
        probe_epochs=2,
        keep=3,
        views=None,
        trainer=FakeTrainer(),
        log=str,
    )
    runs = results["runs"]
    probes = [r["probe_score"] for r in runs]
    for s, probe in zip(spec.schedules, probes, strict=True):  # the score after 2 epochs
        journal = (tmp_path / "k" / "runs" / s.name / "train_journal.jsonl").read_text()
        scores = [json.loads(line)["score"] for line in journal.splitlines()]
        assert probe == scores[1]
    ranked = sorted(range(len(probes)), key=lambda i: (-probes[i], i))[:3]
    assert {i for i, r in enumerate(runs) if r["status"] == "complete"} == set(ranked)
    for i, (r, s) in enumerate(zip(runs, spec.schedules, strict=True)):
        assert r["epochs"] == (s.epochs if i in ranked or s.epochs <= 2 else 2)
    assert results["cost"]["epochs"] == sum(
        s.epochs if i in ranked or s.epochs <= 2 else 2 for i, s in enumerate(spec.schedules)
    )
    assert results["search"] == {"search": "topk", "probe_epochs": 2, "keep": 3}


@pytest.mark.usefixtures("one_thread")
def test_grid_search_from_the_cli_on_tiny_videos(order_videos, tmp_path, opplan_cli, capsys):
    config = write_video_config(order_videos, tmp_path / "c.yaml")
    argv = ["grid", str(config), "--budgets", "2,4", "--samplings", "uniform"]
    argv += [
        "--decays",
        "3step",
        "--search",
        "asha",
        "--views",
        "1x1",
        "--out",
        str(tmp_path / "a"),
    ]
    assert opplan_cli(argv) == 0
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert results["search"]["search"] == "asha" and len(results["runs"]) == 4
    assert set(results["tests"]) == {results["best"]}
    assert "search: asha" in capsys.readouterr().out
    bad = ["grid", str(config), "--search", "bohb", "--out", str(tmp_path / "b")]
    with pytest.raises(SystemExit):
        opplan_cli(bad)
    bad = ["grid", str(config), "--search", "topk", "--keep", "99", "--out", str(tmp_path / "c")]
    assert opplan_cli(bad) == 2 and not (tmp_path / "c").exists()


@pytest.mark.parametrize("search", ["asha", "hyperband", "topk"])
def test_a_search_replayed_on_a_recorded_grid_equals_the_trained_search(
    setup, tmp_path, monkeypatch, search
):
    """``recorded=GRID``: the same decisions, runs, epochs and best as the trained search,
    nothing trained (no trainer is built), the cost's seconds the grid's own epochs'."""
    from opplan.baselines import _search as search_module
    from opplan.baselines import run_grid

    config, spec = setup
    grid = tmp_path / "grid"
    run_grid(config, spec, grid, views=None, trainer=FakeTrainer(), log=str)
    trained = run_search(
        config, spec, tmp_path / "t", search, views=None, trainer=FakeTrainer(), log=str
    )

    def no_training(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a recorded search built a trainer")

    monkeypatch.setattr("opplan.engine.build.build_video_trainer", no_training)
    replayed = run_search(config, spec, tmp_path / "r", search, views=None, log=str, recorded=grid)
    assert _stable(replayed) == _stable(trained)
    assert {r["status"] for r in replayed["runs"]} >= {"complete"}
    assert len({r["status"] for r in replayed["runs"]}) == 2  # some stopped early
    seconds = 0.0
    for r, s in zip(replayed["runs"], spec.schedules, strict=True):
        events = search_module._epoch_events(grid / "runs" / s.name)
        assert r["seconds"] == pytest.approx(sum(e["seconds"] for e in events[: r["epochs"]]))
        seconds += r["seconds"]
    assert replayed["cost"]["wall_seconds"] == pytest.approx(seconds)
    # repeated: the same (resumed from its own files); a trained search dir is not replayed
    again = run_search(
        config, spec, tmp_path / "r", search, resume=True, views=None, log=str, recorded=grid
    )
    assert again == replayed
    with pytest.raises(Exception, match=r"another search\.json"):
        run_search(
            config, spec, tmp_path / "t", search, resume=True, views=None, log=str, recorded=grid
        )


def test_a_recorded_search_refuses_an_unfinished_or_other_grid(setup, tmp_path, order_videos):
    from opplan.baselines import run_grid
    from opplan.errors import RunDirError

    config, spec = setup
    with pytest.raises(RunDirError, match=r"no config\.yaml"):
        run_search(config, spec, tmp_path / "a", "asha", views=None, recorded=tmp_path / "none")
    small = GridSpec.paper([2, 4], [0.05, 0.005], ["consecutive"], [2])
    run_grid(config, small, tmp_path / "g", views=None, trainer=FakeTrainer(), log=str)
    with pytest.raises(RunDirError, match=r"has not finished consecutive-.*-e4"):
        run_search(config, spec, tmp_path / "b", "asha", views=None, log=str,
                   recorded=tmp_path / "g")  # fmt: skip
    text = yaml.safe_load(write_video_config(order_videos, tmp_path / "o.yaml").read_text())
    text["trainer"]["seed"] = 7
    (tmp_path / "o.yaml").write_text(yaml.safe_dump(text))
    other = load_config(tmp_path / "o.yaml")
    with pytest.raises(RunDirError, match="another config"):
        run_search(other, small, tmp_path / "c", "asha", views=None, recorded=tmp_path / "g")
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()
