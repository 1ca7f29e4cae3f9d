"""Every value of a study is checked when the study loads, before any run starts: one line
naming the file, the key and the fix. Each case below ran (or crashed mid-run) before."""

import pytest

from bench.cli import main
from bench.errors import SpecError
from bench.optimizers import OPTIMIZERS
from bench.params import Param
from bench.schedules import SCHEDULES
from bench.spec import load_study

BASE = {"dataset": '"digits"', "model": '"mlp"', "epochs": "2", "batch_size": "32", "lr": "0.1"}


def study(tmp_path, extra: str = "", **changes) -> str:
    keys = {**BASE, **changes}
    path = tmp_path / "study.toml"
    path.write_text("".join(f"{k} = {v}\n" for k, v in keys.items() if v is not None) + extra)
    return str(path)


CASES = [  # (what, the file's changes, extra text, a part of the message)
    ("milestones a string", {"schedule": '{ name = "multistep", milestones = "2" }'}, "",
     "milestones must be a list of increasing integers >= 1, got '2'"),
    ("milestones decreasing", {"schedule": '{ name = "multistep", milestones = [5, 2] }'}, "",
     "milestones must be a list of increasing integers"),
    ("warm-up past the horizon", {"schedule": '{ name = "warmup_cosine", warmup_epochs = 5, t_max = 3 }'}, "",
     "warmup_epochs must be below t_max"),
    ("step_size 0", {"schedule": '{ name = "step", step_size = 0 }'}, "", "step_size must be an integer >= 1, got 0"),
    ("gamma 0", {"schedule": '{ name = "step", step_size = 1, gamma = 0 }'}, "", "gamma must be a finite number > 0"),
    ("gamma negative", {"schedule": '{ name = "exponential", gamma = -0.5 }'}, "", "gamma must be a finite number > 0"),
    ("a cosine floor above its lr", {"schedule": '{ name = "cosine", t_max = 2, eta_min = 1 }'}, "",
     "eta_min 1 is above its base lr 0.1"),
    ("t_max 0", {"schedule": '{ name = "cosine", t_max = 0 }'}, "", "t_max must be an integer >= 1, got 0"),
    ("t_max a float", {"schedule": '{ name = "cosine", t_max = 2.5 }'}, "", "t_max must be an integer >= 1, got 2.5"),
    ("plateau factor 1", {"schedule": '{ name = "plateau", factor = 1.0 }'}, "", "factor must be a finite number in (0, 1)"),
    ("momentum negative", {"optimizer": '{ name = "sgd", momentum = -0.5 }'}, "",
     "momentum must be a finite number in [0, 1), got -0.5"),
    ("nesterov without momentum", {"optimizer": '{ name = "sgd", nesterov = true }'}, "", "nesterov needs a momentum > 0"),
    ("Adam beta 1.5", {"optimizer": '{ name = "adam", beta1 = 1.5 }'}, "", "beta1 must be a finite number in [0, 1), got 1.5"),
    ("eps 0", {"optimizer": '{ name = "adam", eps = 0 }'}, "", "eps must be a finite number > 0, got 0"),
    ("a flag as a number", {"optimizer": '{ name = "rmsprop", centered = 1 }'}, "", "centered must be true or false"),
    ("optimizer name not a string", {"optimizer": '{ name = 3 }'}, "", "unknown optimizer 3"),
    ("lr inf", {"lr": "inf"}, "", "lr must be a finite number > 0, got inf"),
    ("lr nan", {"lr": "nan"}, "", "lr must be a finite number > 0, got nan"),
    ("grid with a string", {}, '[grid]\nlr = ["0.1"]\n', "each [grid] lr must be a finite number > 0, got '0.1'"),
    ("grid of optimizers not tables", {}, '[grid]\noptimizer = ["adam"]\n', "each [grid] optimizer must be a table"),
    ("normalize unknown", {"normalize": '"zscore"'}, "", "unknown normalize 'zscore'"),
    ("normalize std 0", {"normalize": "{ mean = 0.5, std = 0 }"}, "", "normalize std must be positive"),
    ("train_size 0", {"train_size": "0"}, "", "train_size must be an integer >= 1, got 0"),
    ("val_size too small to judge collapse", {"val_size": "1"}, "",
     "val_size 1 is too small to judge collapse (a model that predicts one class on the validation set is flagged "
     "collapsed): give at least 20 (2 per class of digits)"),
    ("train_size past the dataset", {"train_size": "5000"}, "", "train_size=5000 but digits has only 1437"),
    ("batch past the default data", {"batch_size": "2000"}, "", "batch_size 2000 is larger than its 1437 training examples"),
    ("seeds 0", {"seeds": "0"}, "", "seeds must be an integer >= 1, got 0"),
    ("log_every negative", {"log_every": "-1"}, "", "log_every must be an integer >= 0"),
    ("a claim's check a number", {}, '[[claims]]\ntext = "t"\ncheck = 5\nsource = "lrbench"\n',
     "check must be a non-empty string, got 5"),
    ("claims not a list", {"claims": '"all"'}, "", "claims must be a list of tables"),
    ("primary not a metric", {"primary": '"accuracy"'}, "", "primary is one of val.accuracy, val.loss"),
    ("a study margin of 0", {"margin": "0"}, "", "margin is a number above 0 in the units of primary, got 0"),
    ("a claim's margin negative", {},
     '[[claims]]\ntext = "t"\ncheck = \'final("val.loss") > 0\'\nsource = "lrbench"\nmargin = -0.1\n',
     "margin is a number above 0 (in the units of the numbers it compares), got -0.1"),
    ("a claim's quick not a flag", {},
     '[[claims]]\ntext = "t"\ncheck = \'final("val.loss") > 0\'\nsource = "lrbench"\nquick = "yes"\n',
     "quick is true or false, got 'yes'"),
    ("configs not tables", {}, "configs = [1]\n", "[[configs]] must be a table of keys, got 1"),
    ("a name that leaves --out", {"name": '"../elsewhere"'}, "", "name '../elsewhere' is also a folder name"),
    ("a name that is an option", {"name": '"-rf"'}, "", "start with an ASCII letter or digit"),
    ("a name past a file name's length", {"name": '"' + "a" * 250 + '"'}, "", "up to 99 ASCII letters"),
]


@pytest.mark.parametrize("what, changes, extra, message", CASES, ids=[c[0] for c in CASES])
def test_bad_value_is_one_line_at_load(tmp_path, what, changes, extra, message):
    with pytest.raises(SpecError) as e:
        load_study(study(tmp_path, extra, **changes))
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert "study.toml" in str(e.value)


def test_files_that_are_not_study_files(tmp_path):
    (tmp_path / "x.toml").mkdir()
    with pytest.raises(SpecError, match="is not a file"):
        load_study(str(tmp_path / "x.toml"))
    latin = tmp_path / "latin.toml"
    latin.write_bytes('description = "café"\n'.encode("latin-1"))
    with pytest.raises(SpecError, match="not UTF-8 text .* save the study file as UTF-8"):
        load_study(str(latin))
    bom = tmp_path / "bom.toml"
    bom.write_text("\ufeff" + open(study(tmp_path)).read(), encoding="utf-8")  # as some editors save it
    with pytest.raises(SpecError, match=r"starts with a byte-order mark \(UTF-8 with BOM\).*without BOM"):
        load_study(str(bom))
    with pytest.raises(SpecError, match="no study file at .*nowhere/mine.toml: check the path"):
        load_study(str(tmp_path / "nowhere" / "mine.toml"))  # a path, not an unknown study name


@pytest.mark.parametrize("option, value", [("--seeds", "1000000000"), ("--threads", "100000"), ("--jobs", "5000")])
def test_counts_are_bounded_before_anything_runs(tmp_path, capsys, option, value):
    """--seeds 1000000000 once took 3 GB in 3 minutes without starting a run, deaf to SIGTERM."""
    assert main(["run", "digits", "--quick", option, value, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{option} must be at most" in err[0] and value in err[0], err


def test_every_declared_default_is_valid():
    """The declarations check themselves: a default that its own rule refuses would make every study fail."""
    for family in (OPTIMIZERS, SCHEDULES):
        for name, declaration in family.items():
            for key, default in declaration.defaults.items():
                assert declaration.params[key].valid(default), (name, key, default)


def test_rules_name_their_range():
    assert Param("number", 0.0, 0, 1, high_open=True).rule == "a finite number in [0, 1)"
    assert not Param("integer", 1, 1).valid(True)  # TOML's true is not the integer 1


@pytest.mark.parametrize("frameworks, message", [("", "names no framework"), (" , ", "names no framework")])
def test_frameworks_option_that_names_none(tmp_path, capsys, frameworks, message):
    assert main(["run", "digits", "--quick", "--frameworks", frameworks, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("extra, line", [
    ("[grid]\nlr = [0.1, nan]\n", 7),
    ("[[configs]]\nmodel = \"mlp\"\n[[configs]]\nlr = nan\n", 9),
    ("[quick]\nepochs = 1\n[[configs]]\nlr = 0.2\n[[configs]]\nbatch_size = 16\nlr = -1\n", 12),
], ids=["grid", "second configs", "configs after quick"])
def test_a_bad_value_points_at_its_own_line_not_the_base_one(tmp_path, extra, line):
    """`lr = nan` in [grid] or [[configs]] was once reported at the base lr's line (5)."""
    with pytest.raises(SpecError, match=rf"study.toml:{line}: (each \[grid\] )?lr must be a finite number > 0"):
        load_study(study(tmp_path, extra))
