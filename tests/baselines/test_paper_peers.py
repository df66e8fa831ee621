"""``benchmarks.paper_tables peers`` at toy sizes: every method runs, the Markdown has a
row per method and a verdict per task, and a repeated command resumes without training."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from benchmarks import paper_tables
from opplan.engine import VideoTrainer

pytest.importorskip("optuna", reason="ASHA/Hyperband need the 'hpo' extra (optuna)")

TOY = ["--tasks", "order", "--videos-per-class", "4", "--frames", "24,40", "--lengths", "2,8"]
TOY += ["--lrs", "0.05,0.005", "--budgets", "2", "--decays", "3step", "--delay", "1"]
TOY += ["--max-epochs", "2", "--min-epochs-from-initial", "0", "--views", "1x1"]
TOY += ["--samplings", "uniform", "--multigrid-epochs", "3", "--keep", "1", "--probe-epochs", "1"]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_peers_runs_every_method_and_resumes(tmp_path, monkeypatch):
    argv = ["peers", *TOY, "--work", str(tmp_path)]
    paper_tables.main(argv)
    text = (tmp_path / "peers.md").read_text()
    for label in (
        "planner (rise 3)",
        "planner (paper's rule)",
        "best hand-tuned (full grid)",
        "multigrid",
        "multigrid (planner's epochs)",
        "ASHA over the grid",
        "Hyperband over the grid",
        "top-k",
    ):
        assert f"| order | {label} |" in text, label
    assert "`order`: planner (rise 3):" in text and "target" in text
    root = tmp_path / "runs" / "order-dg_p3d_tiny-uniform-seed0"
    for plan, rise in (("plan", 0), ("plan-rise3", 3)):  # each rule plans its own config
        assert f"min_rise_from_initial: {rise:.1f}" in (root / plan / "config.yaml").read_text()
    calls = {"n": 0}
    original = VideoTrainer.train_epoch

    def counting(self):
        calls["n"] += 1
        return original(self)

    monkeypatch.setattr(VideoTrainer, "train_epoch", counting)
    record_path = tmp_path / "peers-records" / "order-dg_p3d_tiny-uniform-seed0.json"
    root = tmp_path / "runs" / "order-dg_p3d_tiny-uniform-seed0"
    record = json.loads(record_path.read_text())
    assert record["seed"] == 0 and record["options"]["keep"] == 1
    assert record["command"].endswith(" ".join(argv))
    methods = record["methods"]
    matched = methods["multigrid (planner's epochs)"]["epochs"]
    assert matched == methods["planner (rise 3)"]["epochs"] and matched > 3  # not the 3 ep run
    assert methods["multigrid"]["epochs"] == 3
    grid_test = record["methods"]["best hand-tuned (full grid)"]["test"]
    assert f"| order | best hand-tuned (full grid) | {100 * grid_test:.1f} (" in text
    paper_tables.main(argv)  # the record is used as it is
    assert calls["n"] == 0 and (tmp_path / "peers.md").read_text() == text
    record_path.unlink()
    paper_tables.main(argv)
    assert calls["n"] == 0  # everything resumed from its run directory
    assert (tmp_path / "peers.md").read_text() == text
    assert json.loads(record_path.read_text())["methods"] == record["methods"]
    # a record cut short (a session ended mid-seed) runs only what it lacks: with the run
    # directories gone, the plans are not trained again
    partial = {**record, "complete": False}
    partial["methods"] = {k: v for k, v in record["methods"].items() if "planner" in k}
    record_path.write_text(json.dumps(partial))
    shutil.rmtree(root / "plan")
    shutil.rmtree(root / "plan-rise3")
    paper_tables.main(argv)
    assert calls["n"] == 0 and (tmp_path / "peers.md").read_text() == text
    assert not (root / "plan").exists() and json.loads(record_path.read_text())["complete"]
    # a record written before the matched multigrid existed (flagged complete) runs just it
    older = {**record, "complete": True}
    older["methods"] = {k: v for k, v in methods.items() if k != "multigrid (planner's epochs)"}
    record_path.write_text(json.dumps(older))
    shutil.rmtree(root / "multigrid-matched")
    paper_tables.main(argv)
    assert calls["n"] == matched  # its epochs, nothing else trained
    rerun = json.loads(record_path.read_text())
    assert rerun["complete"] and rerun["methods"].keys() == methods.keys()
    again, before = (r["methods"]["multigrid (planner's epochs)"] for r in (rerun, record))
    assert {k: again[k] for k in ("test", "epochs", "weighted")} == {
        k: before[k] for k in ("test", "epochs", "weighted")
    }  # CPU training: the same bits, only its seconds differ
    calls["n"] = 0
    # a record of other options is refused before anything runs
    with pytest.raises(SystemExit) as refused:
        paper_tables.main([*argv, "--keep", "2"])
    assert refused.value.code == 2 and calls["n"] == 0
    # the table from the records alone: the same rows, the record's command listed
    paper_tables.main(
        ["peers", "--tasks", "order,tempo", "--work", str(tmp_path), "--from-records"]
    )
    assembled = (tmp_path / "peers.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| order |")]
    assert rows and all(row in assembled for row in rows)
    assert "`tempo`: no complete record" in assembled and record["command"] in assembled
    # an extra row on a complete record: only that plan is trained, the rest is kept
    calls["n"] = 0
    paper_tables.main([*argv, "--scored-starts"])
    scored = json.loads(record_path.read_text())["methods"]
    assert "planner (scored starts)" in scored and calls["n"] > 0
    assert {k: v for k, v in scored.items() if k != "planner (scored starts)"} == rerun["methods"]
    config = (root / "plan-rise3-scored" / "config.yaml").read_text()
    assert "score_start: true" in config and "recalibrate_bn: true" in config
    assert "| order | planner (scored starts) |" in (tmp_path / "peers.md").read_text()
    # the searches replayed the seed's grid; trained instead, they decide and score the same
    assert not any((root / s).exists() for s in ("asha", "hyperband", "topk"))
    paper_tables.main([*argv, "--train-searches", "--records", str(tmp_path / "trained")])
    for search in ("asha", "hyperband", "topk"):
        replayed = json.loads((root / f"{search}-replay" / "results.json").read_text())
        trained = json.loads((root / search / "results.json").read_text())
        assert calls["n"] > 0 and replayed["tests"] == trained["tests"]
        for r, t in zip(replayed["runs"], trained["runs"], strict=True):
            assert (r["schedule"], r["status"], r["epochs"]) == (
                t["schedule"], t["status"], t["epochs"]
            )  # fmt: skip
            assert r["val_score"] == t["val_score"]


def test_a_record_of_other_options_is_refused_naming_them(tmp_path, capsys):
    from benchmarks.paper_peers import _options, seed_record

    parser = paper_tables.build_parser()
    args = parser.parse_args(["peers", *TOY, "--work", str(tmp_path)])
    args.argv = ["peers"]
    records = tmp_path / "peers-records"
    records.mkdir()
    stale = {"options": {**_options(args), "keep": 5}, "methods": {}, "command": "x", "seed": 0}
    (records / "order-dg_p3d_tiny-uniform-seed0.json").write_text(json.dumps(stale))
    with pytest.raises(SystemExit) as refused:
        seed_record(args, "order", "dg_p3d_tiny", 0)
    assert refused.value.code == 2
    message = capsys.readouterr().err
    assert "order-dg_p3d_tiny-uniform-seed0.json" in message and "options (keep)" in message
    assert not (tmp_path / "runs").exists()  # refused before anything ran


def test_a_records_own_rewrite_does_not_mark_its_commit_dirty(tmp_path):
    import subprocess

    from benchmarks.paper_peers import _commit

    def git(*argv):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *argv],
                       cwd=tmp_path, check=True, capture_output=True)  # fmt: skip

    (tmp_path / "benchmarks" / "records").mkdir(parents=True)
    (tmp_path / "benchmarks" / "records" / "r.json").write_text("{}\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "init")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tmp_path,
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert _commit(tmp_path) == head
    (tmp_path / "benchmarks" / "records" / "r.json").write_text('{"a": 1}\n')
    assert _commit(tmp_path) == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert _commit(tmp_path) == head + "-dirty"
