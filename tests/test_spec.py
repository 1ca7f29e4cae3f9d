"""Study files: the bundled ones are valid, a typo is named with its line and the allowed keys."""

import pytest

from bench.errors import SpecError
from bench.spec import load_study, study_names

STUDIES = ["digits", "lr-sweep", "one-cycle", "optimizers", "schedules", "signs", "step-decay"]


def write(tmp_path, text):
    path = tmp_path / "my.toml"
    path.write_text(text)
    return path


BASE = 'dataset = "digits"\nmodel = "mlp"\nepochs = 2\nbatch_size = 32\nlr = 0.1\n'


def test_bundled_studies_load_and_expand():
    assert study_names() == STUDIES
    sweep = load_study("lr-sweep").runs(["torch"])
    assert sorted(r.lr for r in sweep) == [0.0001, 0.0001, 0.001, 0.001, 0.01, 0.01, 0.1, 0.1]
    assert {r.optimizer["momentum"] for r in sweep} == {0.5}
    warm = [r for r in sweep if r.protocol == "warm_start"]
    assert [(r.lr, r.stage) for r in warm] == [(0.1, 0), (0.01, 1), (0.001, 2), (0.0001, 3)]  # the original's order
    assert {r.chain for r in warm} == {(0.1, 0.01, 0.001, 0.0001)}
    assert {r.init for r in load_study("signs").runs(["torch"])} == {"glorot"}
    schedules = load_study("schedules").runs(["torch", "keras"], quick=True, seeds=2)
    assert len(schedules) == 4 * 2 * 2 and {r.epochs for r in schedules} == {6}
    one_cycle = load_study("one-cycle").runs(["torch"])
    assert [(r.schedule["name"], r.lr) for r in one_cycle] == [("one_cycle", 0.175), ("one_cycle", 0.02), ("inverse_sqrt", 0.3),
                                                                         ("cosine", 0.02)]
    assert one_cycle[0].schedule["cycle_epochs"] == one_cycle[0].epochs == 30
    optimizers = load_study("optimizers").runs(["torch"])
    assert [r.optimizer_label for r in optimizers][:4] == ["sgd", "sgd", "sgd", "sgd(momentum=0.9)"]
    assert load_study("digits").runs(["torch"])[0].schedule_label == "constant"


def test_run_id_is_stable_and_distinct():
    a = load_study("lr-sweep").runs(["torch"])
    b = load_study("lr-sweep").runs(["torch"])
    assert [r.run_id for r in a] == [r.run_id for r in b]
    assert len({r.run_id for r in a}) == 8
    quick = load_study("lr-sweep").runs(["torch"], quick=True)
    assert not {r.run_id for r in a} & {r.run_id for r in quick}


def test_unknown_key_names_key_line_and_allowed(tmp_path):
    path = write(tmp_path, BASE + "epoch = 3\n")
    with pytest.raises(SpecError, match=r"my.toml:6: unknown key 'epoch'.*allowed keys are name, description"):
        load_study(str(path))


def test_wrong_type_and_bad_values(tmp_path):
    with pytest.raises(SpecError, match="epochs must be an integer >= 1, got '2'"):
        load_study(str(write(tmp_path, BASE.replace("epochs = 2", 'epochs = "2"'))))
    with pytest.raises(SpecError, match="lr must be a finite number > 0, got -0.1"):
        load_study(str(write(tmp_path, BASE.replace("lr = 0.1", "lr = -0.1"))))
    with pytest.raises(SpecError, match=r"each \[grid\] lr must be a finite number > 0, got 0.0"):
        load_study(str(write(tmp_path, BASE + "[grid]\nlr = [0.1, 0.0]\n")))
    with pytest.raises(SpecError, match="unknown optimizer 'adamw'"):
        load_study(str(write(tmp_path, BASE + '[optimizer]\nname = "adamw"\n')))
    with pytest.raises(SpecError, match="has no parameter 'betas'.*allowed beta1"):
        load_study(str(write(tmp_path, BASE + '[optimizer]\nname = "adam"\nbetas = 1\n')))
    with pytest.raises(SpecError, match="has no 'model'"):
        load_study(str(write(tmp_path, BASE.replace('model = "mlp"\n', ""))))
    with pytest.raises(SpecError, match="unknown study 'nope'"):
        load_study("nope")


def test_fields_added_later_leave_earlier_run_ids_alone():
    """A spec at the later fields' defaults hashes as before they existed (committed results stay valid)."""
    import csv
    import dataclasses
    from pathlib import Path

    fresh = load_study("lr-sweep").runs(["torch"], epochs=10)[0]
    with open(Path(__file__).parents[1] / "results" / "lr-sweep-10-epochs" / "manifest.csv") as f:
        committed = next(r for r in csv.DictReader(f) if r["framework"] == "torch" and float(r["lr"]) == 0.1
                         and r["seed"] == "0" and r.get("protocol") in (None, "", "fresh"))
    assert fresh.protocol == "fresh" and fresh.run_id == committed["run_id"]  # run before protocol existed
    assert dataclasses.replace(fresh, init="glorot").run_id != fresh.run_id


def test_warm_start_needs_a_grid_of_lrs(tmp_path):
    with pytest.raises(SpecError, match="warm_start.*needs the lrs as a \\[grid\\] lr list"):
        load_study(str(write(tmp_path, BASE + 'protocol = "warm_start"\n')))
    with pytest.raises(SpecError, match="protocol must be one of fresh, warm_start"):
        load_study(str(write(tmp_path, BASE + 'protocol = "warm"\n')))
    with pytest.raises(SpecError, match="init must be one of torch, glorot"):
        load_study(str(write(tmp_path, BASE + 'init = "xavier"\n')))


def test_claims_need_a_source_and_references_their_keys(tmp_path):
    claim = '[[claims]]\ntext = "t"\ncheck = "final(\'val.loss\') > 0"\n'
    with pytest.raises(SpecError, match="needs the keys text, check, source"):
        load_study(str(write(tmp_path, BASE + claim)))
    with pytest.raises(SpecError, match="a claim's source must be a non-empty string, got ''"):
        load_study(str(write(tmp_path, BASE + claim + 'source = ""\n')))
    said = 'source = "Smith et al. 2017, fig. 3"\n'  # who says it, in the user's words: the report prints it as given
    assert load_study(str(write(tmp_path, BASE + claim + said))).claims[0]["source"] == "Smith et al. 2017, fig. 3"
    ref = '[[reference]]\nmetric = "val.loss"\nepoch = 2\nvalue = 0.4\ntolerance = 0.1\n'
    assert load_study(str(write(tmp_path, BASE + ref))).reference[0]["value"] == 0.4
    with pytest.raises(SpecError, match=r"\[\[reference\]\]: unknown metric 'loss': lrbench records"):
        load_study(str(write(tmp_path, BASE + ref.replace("val.loss", "loss"))))
    with pytest.raises(SpecError, match=r"\[\[reference\]\]: unknown metric 'val.los'"):  # a typo was once accepted
        load_study(str(write(tmp_path, BASE + ref.replace("val.loss", "val.los"))))
    with pytest.raises(SpecError, match=r"\[\[reference\]\] val.loss where \{'lr': 0.5\} matches none of the study's "
                                        r"configs: its lr values are"):  # a reference no run can meet
        load_study(str(write(tmp_path, BASE + ref + 'where = { lr = 0.5 }\n')))
    with pytest.raises(SpecError, match="where must be a table of filters"):
        load_study(str(write(tmp_path, BASE + ref + 'where = { colour = "red" }\n')))
    with pytest.raises(SpecError, match="epoch counts from 1"):
        load_study(str(write(tmp_path, BASE + ref.replace("epoch = 2", "epoch = 0"))))


def test_every_bundled_claim_says_where_it_comes_from():
    for name in STUDIES:
        assert all(c["source"] in ("seed", "lrbench") for c in load_study(name).claims), name
