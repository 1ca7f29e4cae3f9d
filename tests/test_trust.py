"""Results a user can trust: a folder holds one experiment, the report shows every run, a claim
that cannot be evaluated is an error at load, not a verdict. Each case failed silently before."""

import json

import pandas as pd
import pytest

from bench.claims import evaluate_claims
from bench.errors import BenchError, SpecError
from bench.provenance import RECORD, claim_folder, record
from bench.report import write_report
from bench.results import (
    COLUMNS,
    EPOCH_METRICS,
    MANIFEST_COLUMNS,
    ROWS,
    ResultStore,
    read_text,
    with_run_columns,
    write_text,
)
from bench.spec import load_study

STUDY = '''name = "mine"
dataset = "digits"
model = "mlp"
epochs = 2
batch_size = 32
lr = 0.1
[grid]
lr = [0.1, 0.01]
[[claims]]
text = "lr 0.01 ends with the lower val loss"
check = 'final("val.loss", lr=0.01) < final("val.loss", lr=0.1)'
source = "lrbench"
margin = 0.01
'''


def study_file(tmp_path, text=STUDY, name="mine.toml"):
    path = tmp_path / name
    path.write_text(text)
    return load_study(str(path))


def rows_of(spec, epochs, loss):
    base = {"run_id": spec.run_id, "study": spec.study, "framework": spec.framework, "framework_version": "2.13.0",
            "device": "cpu", "model": spec.model, "dataset": spec.dataset, "optimizer": spec.optimizer_label,
            "schedule": spec.schedule_label, "lr": spec.lr, "batch_size": spec.batch_size, "seed": spec.seed, "step": ""}
    return [{**base, "epoch": e, "split": s, "metric": m, "value": loss / e if m == "loss" else 0.5}
            for e in range(1, epochs + 1) for s, m in EPOCH_METRICS]


def manifest_of(spec, status, epochs_done, error=""):
    return {"run_id": spec.run_id, "study": spec.study, "framework": spec.framework, "model": spec.model,
            "dataset": spec.dataset, "optimizer": spec.optimizer_label, "schedule": spec.schedule_label, "lr": spec.lr,
            "batch_size": spec.batch_size, "seed": spec.seed, "protocol": spec.protocol, "epochs": spec.epochs,
            "epochs_done": epochs_done, "status": status, "error": error, "spec": spec.to_json(), "device": "cpu",
            "framework_version": "2.13.0"}


def folder_with(tmp_path, study, outcomes, options="--device auto"):
    """A study folder holding ``outcomes`` [(spec, status, loss)], recorded as ``study`` made it."""
    specs = study.runs(["torch"])
    store = ResultStore(tmp_path / "out", study.name)
    with store.lock():
        claim_folder(store, record(study, specs, options))
        for spec, status, loss in outcomes:
            done = status != "failed"
            store.save_run(rows_of(spec, spec.epochs, loss) if done else [],
                           manifest_of(spec, status, spec.epochs if done else 0, "" if done else "OSError: boom at x.py:1"))
    return store, specs


# ---------------------------------------------------------------- a folder holds one experiment


def test_another_definition_in_the_same_folder_is_refused(tmp_path):
    study = study_file(tmp_path)
    store, specs = folder_with(tmp_path, study, [])
    with store.lock():
        claim_folder(store, record(study, study.runs(["torch", "keras"], seeds=3), "--device auto"))  # more of the same
        longer = study.runs(["torch"], epochs=5)
        with pytest.raises(BenchError, match=r"holds another definition of mine \(epochs 2 there, 5 here\).*--out OTHER"):
            claim_folder(store, record(study, longer, "--epochs 5 --device auto"))
        wider = study_file(tmp_path, STUDY.replace("lr = [0.1, 0.01]", "lr = [0.1, 0.01, 0.001]"), "wider.toml")
        claim_folder(store, record(wider, wider.runs(["torch"]), "--device auto"))  # more grid points: the same experiment
        claim_folder(store, record(study, specs, "--device auto"))  # and a part of it
        assert len(json.loads((store.dir / RECORD).read_text())["specs"]) == 3
        edited = study_file(tmp_path, STUDY.replace("batch_size = 32", "batch_size = 16"), "copy.toml")
        with pytest.raises(BenchError, match=r"batch_size 32 there, 16 here"):
            claim_folder(store, record(edited, edited.runs(["torch"]), "--device auto"))
        smaller = study_file(tmp_path, STUDY.replace("lr = 0.1\n", "lr = 0.1\ntrain_size = 500\n"), "smaller.toml")
        with pytest.raises(BenchError, match=r"\(train_size null there, 500 here\)"):  # not the grid the folder has more of
            claim_folder(store, record(smaller, smaller.runs(["torch"]), "--device auto"))


def test_a_record_written_before_a_spec_field_existed_is_the_same_experiment(tmp_path):
    """A field added to RunSpec since the folder was made (its default keeps run_ids) extends nothing and refuses
    nothing: the command that made the folder goes on extending it; a real change is still refused."""
    study = study_file(tmp_path)
    store, specs = folder_with(tmp_path, study, [])
    saved = json.loads((store.dir / RECORD).read_text())
    older = [{k: v for k, v in s.items() if k not in ("eval_train", "floor_cost")} for s in saved["specs"]]
    (store.dir / RECORD).write_text(json.dumps({**saved, "specs": older, "definition": "0123456789ab"}))
    with store.lock():
        claim_folder(store, record(study, study.runs(["torch"], seeds=3), "--device auto"))
        with pytest.raises(BenchError, match=r"\(epochs 2 there, 5 here\)"):
            claim_folder(store, record(study, study.runs(["torch"], epochs=5), "--epochs 5 --device auto"))


def test_another_lrbench_release_is_refused(tmp_path):
    study = study_file(tmp_path)
    store, specs = folder_with(tmp_path, study, [])
    saved = json.loads((store.dir / RECORD).read_text())
    (store.dir / RECORD).write_text(json.dumps({**saved, "lrbench": "0.0.1"}))
    with store.lock(), pytest.raises(BenchError, match="made by lrbench 0.0.1, this is lrbench 0.1.0"):
        claim_folder(store, record(study, specs, "--device auto"))


def test_a_folder_from_before_the_record_is_adopted_only_if_its_runs_belong(tmp_path):
    study = study_file(tmp_path)
    store, specs = folder_with(tmp_path, study, [(s, "done", 1.0) for s in study.runs(["torch"])])
    (store.dir / RECORD).unlink()
    longer = study.runs(["torch"], epochs=5)
    with store.lock():
        with pytest.raises(BenchError, match="holds 2 runs of another definition of mine"):
            claim_folder(store, record(study, longer, "--epochs 5 --device auto"))
        claim_folder(store, record(study, specs, "--device auto"))
    assert json.loads((store.dir / RECORD).read_text())["options"] == "--device auto"


def test_a_damaged_record_is_named(tmp_path):
    study = study_file(tmp_path)
    store, specs = folder_with(tmp_path, study, [])
    (store.dir / RECORD).write_text("{ half")
    with store.lock(), pytest.raises(BenchError, match="study.json is damaged"):
        claim_folder(store, record(study, specs, "--device auto"))


# ---------------------------------------------------------------- the report hides nothing


def test_report_shows_failed_runs_beside_done_ones(tmp_path):
    study = study_file(tmp_path)
    fast, slow = study.runs(["torch"])
    store, _ = folder_with(tmp_path, study, [(fast, "done", 1.0), (slow, "failed", 0)])
    report = write_report(store.dir.parent).read_text()
    assert "| lr=0.1 " in report and "| lr=0.01 " in report  # both configs in the summary
    summary = report.split("### Per config and framework")[1].split("###")[0]
    assert "| torch | 1 failed |" in summary and "| torch | 1 |" in summary  # runs per config: a failed one named
    section = report.split("### Runs that did not finish, or collapsed")[1].split("###")[0]
    assert "failed" in section and "OSError: boom at x.py:1" in section and "0 of 2" in section


def test_a_study_whose_only_run_failed_still_has_its_section(tmp_path):
    study = study_file(tmp_path)
    store, _ = folder_with(tmp_path, study, [(study.runs(["torch"])[0], "failed", 0)])
    report = write_report(store.dir.parent).read_text()
    assert "## mine: digits, mlp" in report and "OSError: boom" in report and "1 failed" in report


def test_a_users_claims_come_from_the_definition_stored_with_its_runs(tmp_path):
    study = study_file(tmp_path)
    fast, slow = study.runs(["torch"])
    store, _ = folder_with(tmp_path, study, [(fast, "done", 1.0), (slow, "done", 0.5)])
    (tmp_path / "mine.toml").unlink()  # the user's file is gone; the folder still knows its claims
    claims = write_report(store.dir.parent).read_text().split("### Claims")[1]
    assert "lr 0.01 ends with the lower val loss" in claims and "| held " in claims


# ---------------------------------------------------------------- claims


@pytest.mark.parametrize("check, message", [
    ('final("val.los", lr=0.01) < 1', "unknown metric 'val.los'"),
    ('final("val.loss", lr=0.5) < 1', "matches none of the study's configs: its lr values are 0.01, 0.1"),
    ('final("val.loss", schedule="cosine") < 1', "matches none of the study's configs"),
    ('final("val.loss", colour="red") < 1', "final() has no argument 'colour'"),
    ('share("finished") > 0', "share() takes a status first"),
    ('final(3) > 0', "unknown metric 3"),
])
def test_a_claim_that_cannot_be_evaluated_is_an_error_at_load(tmp_path, check, message):
    text = STUDY.replace('''check = 'final("val.loss", lr=0.01) < final("val.loss", lr=0.1)\'''', f"check = '{check}'")
    with pytest.raises(SpecError) as e:
        study_file(tmp_path, text)
    assert message in str(e.value) and "mine.toml" in str(e.value), str(e.value)


def test_a_selection_without_rows_is_cannot_tell_not_a_verdict(tmp_path):
    study = study_file(tmp_path)
    fast, slow = study.runs(["torch"])
    df = pd.DataFrame(rows_of(fast, 2, 1.0), columns=COLUMNS).assign(step=float("nan"))
    manifest = pd.DataFrame([manifest_of(fast, "done", 2)], columns=MANIFEST_COLUMNS)
    claims = [{"text": "t", "check": 'final("val.loss", lr=0.01) < 1', "source": "lrbench"},
              {"text": "n", "check": 'not final("val.loss", lr=0.01) < 1', "source": "lrbench"}]
    verdicts = evaluate_claims(claims, with_run_columns(df, manifest), manifest)["verdict"].tolist()
    assert all(v.startswith("cannot tell: no runs match lr=0.01") for v in verdicts), verdicts


def _cut_at_a_line_end(path):
    lines = read_text(path).splitlines(keepends=True)
    write_text(path, "".join(lines[: len(lines) // 2]))  # whole rows lost: no half line tells


def _word_for_a_number(path):
    head, first, rest = read_text(path).split("\n", 2)
    write_text(path, "\n".join([head, first.rsplit(",", 1)[0] + ",abc", rest]))


def _a_digit_changed(path):
    head, first, rest = read_text(path).split("\n", 2)
    write_text(path, "\n".join([head, first.rsplit(",", 1)[0] + ",0.123", rest]))


def _a_folder_in_its_place(path):
    path.unlink()
    path.mkdir()


DAMAGES = {  # what was done to a combined file -> what the note says
    f"{ROWS} cut mid-line": (lambda p: write_text(p, read_text(p)[: len(read_text(p)) // 2 + 7]), "rows where its runs"),
    f"{ROWS} cut at a line end": (_cut_at_a_line_end, "rows where its runs have"),
    f"{ROWS}: a value replaced by abc": (_word_for_a_number, "a value differs"),
    f"{ROWS}: a number changed": (_a_digit_changed, "a value differs"),
    f"{ROWS}: its bytes cut short": (lambda p: p.write_bytes(p.read_bytes()[:-40]), "EOFError"),
    f"{ROWS}: not gzip": (lambda p: p.write_text(read_text(p)), "BadGzipFile"),
    f"{ROWS}: a folder in its place": (_a_folder_in_its_place, "Is a directory"),
    "manifest.csv: garbage": (lambda p: p.write_bytes(b'\x00garbage,\n"unclosed'), "manifest.csv does not match"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_report_and_plot_read_a_damaged_combined_file_from_the_runs(tmp_path, capsys, damage):
    """A cut results.csv once gave a cut run's epoch-1 accuracy as its final one; an 'abc' value a TypeError; one cut
    at a line end passed every check. The runs' files decide: the report is the undamaged folder's, with a note."""
    from bench.cli import main

    study = study_file(tmp_path)
    store, _ = folder_with(tmp_path, study, [(s, "done", 1.0 + i) for i, s in enumerate(study.runs(["torch"]))])
    assert main(["report", str(store.dir.parent)]) == 0
    clean = (store.dir.parent / "report.md").read_text()
    capsys.readouterr()
    damage_it, said = DAMAGES[damage]
    name = damage.split(" ")[0].rstrip(":")
    damage_it(store.dir / name)
    for command in ("report", "plot"):
        assert main([command, str(store.dir.parent)]) == 0
        err = capsys.readouterr().err.strip().splitlines()
        assert (store.dir.parent / "report.md").read_text() == clean
        notes = [line for line in err if name in line]
        assert len(notes) == 1 and said in notes[0] and "read from the runs instead" in notes[0], err
        command = f"bench run {study.path.resolve()} --seeds 1 --frameworks torch --out {store.dir.parent}"
        assert f"`{command}` rewrites it" in notes[0], err  # the study file that made the folder, by its path


def _an_extra_field(path):
    write_text(path, "".join(line + (",x\n" if i else "\n") for i, line in enumerate(read_text(path).splitlines())))


@pytest.mark.parametrize("damage, said", [(_word_for_a_number, "'abc' is not a number"),
                                          (_an_extra_field, "its rows have more fields than its header")],
                         ids=["a word for a number", "an extra unnamed field"])
def test_a_damaged_combined_file_without_its_runs_is_one_line(tmp_path, capsys, damage, said):
    """A results.csv copied without its runs/ folder has nothing to be checked against but itself. An extra
    unnamed field on every data row once gave an AttributeError traceback."""
    import shutil

    from bench.cli import main

    study = study_file(tmp_path)
    store, _ = folder_with(tmp_path, study, [(s, "done", 1.0) for s in study.runs(["torch"])])
    shutil.rmtree(store.runs_dir)
    damage(store.dir / ROWS)
    for command in ("report", "plot"):
        assert main([command, str(store.dir.parent)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{ROWS} is damaged" in err[0] and said in err[0], err


def test_resume_does_not_trust_a_run_file_with_a_word_for_a_number(tmp_path):
    study = study_file(tmp_path)
    store, specs = folder_with(tmp_path, study, [(s, "done", 1.0) for s in study.runs(["torch"])])
    run = store.runs_dir / f"{specs[0].run_id}.csv"
    head, first, rest = run.read_text().split("\n", 2)
    run.write_text("\n".join([head, first.rsplit(",", 1)[0] + ",abc", rest]))  # the row count unchanged
    trusted, damaged = store.verify()
    assert damaged == {specs[0].run_id: "its value 'abc' is not a number"}
    assert {m["run_id"] for m in trusted} == {specs[1].run_id}


def test_resume_does_not_trust_a_run_file_with_a_number_changed(tmp_path):
    """A value edited to another number keeps the row count and every number a number: the manifest's SHA-256 of
    the rows as written tells."""
    study = study_file(tmp_path)
    store, specs = folder_with(tmp_path, study, [(s, "done", 1.0) for s in study.runs(["torch"])])
    run = store.runs_dir / f"{specs[0].run_id}.csv"
    run.write_text(run.read_text().replace(",0.5\n", ",0.9\n", 1))
    trusted, damaged = store.verify()
    assert damaged == {specs[0].run_id: "its rows are not those its manifest recorded (their SHA-256 differs): a value "
                                        "was changed"}
    assert {m["run_id"] for m in trusted} == {specs[1].run_id}
