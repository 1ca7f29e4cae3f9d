"""Study files: the bundled ones are valid, a typo is named with its line and the allowed keys."""

import pytest

from bench.errors import SpecError
from bench.spec import load_study, study_names

STUDIES = ["digits", "lr-sweep", "optimizers", "schedules", "signs", "step-decay"]


def write(tmp_path, text):
    path = tmp_path / "my.toml"
    path.write_text(text)
    return path


BASE = 'dataset = "digits"\nmodel = "mlp"\nepochs = 2\nbatch_size = 32\nlr = 0.1\n'


def test_bundled_studies_load_and_expand():
    assert study_names() == STUDIES
    sweep = load_study("lr-sweep").runs(["torch"])
    assert sorted(r.lr for r in sweep) == [0.0001, 0.001, 0.01, 0.1]
    assert {r.optimizer["momentum"] for r in sweep} == {0.5}
    schedules = load_study("schedules").runs(["torch", "keras"], quick=True, seeds=2)
    assert len(schedules) == 4 * 2 * 2 and {r.epochs for r in schedules} == {6}
    optimizers = load_study("optimizers").runs(["torch"])
    assert [r.optimizer_label for r in optimizers][:4] == ["sgd", "sgd", "sgd", "sgd(momentum=0.9)"]
    assert load_study("digits").runs(["torch"])[0].schedule_label == "constant"


def test_run_id_is_stable_and_distinct():
    a = load_study("lr-sweep").runs(["torch"])
    b = load_study("lr-sweep").runs(["torch"])
    assert [r.run_id for r in a] == [r.run_id for r in b]
    assert len({r.run_id for r in a}) == 4
    quick = load_study("lr-sweep").runs(["torch"], quick=True)
    assert not {r.run_id for r in a} & {r.run_id for r in quick}


def test_unknown_key_names_key_line_and_allowed(tmp_path):
    path = write(tmp_path, BASE + "epoch = 3\n")
    with pytest.raises(SpecError, match=r"my.toml:6: unknown key 'epoch'.*allowed keys are name, description"):
        load_study(str(path))


def test_wrong_type_and_bad_values(tmp_path):
    with pytest.raises(SpecError, match="'epochs' must be int"):
        load_study(str(write(tmp_path, BASE.replace("epochs = 2", 'epochs = "2"'))))
    with pytest.raises(SpecError, match="lr must be > 0"):
        load_study(str(write(tmp_path, BASE.replace("lr = 0.1", "lr = -0.1"))))
    with pytest.raises(SpecError, match="lr must be > 0"):
        load_study(str(write(tmp_path, BASE + "[grid]\nlr = [0.1, 0.0]\n")))
    with pytest.raises(SpecError, match="unknown optimizer 'adamw'"):
        load_study(str(write(tmp_path, BASE + '[optimizer]\nname = "adamw"\n')))
    with pytest.raises(SpecError, match="has no parameter 'betas'.*allowed beta1"):
        load_study(str(write(tmp_path, BASE + '[optimizer]\nname = "adam"\nbetas = 1\n')))
    with pytest.raises(SpecError, match="has no 'model'"):
        load_study(str(write(tmp_path, BASE.replace('model = "mlp"\n', ""))))
    with pytest.raises(SpecError, match="unknown study 'nope'"):
        load_study("nope")
