"""No traceback for any damaged path of a `bench find-lr` folder (test_path_walk_torch.py says how paths are walked)."""

import pytest

from .test_path_walk_torch import made, walk  # noqa: F401  (made: the fixture)

pytestmark = pytest.mark.env_torch  # the tox envs that run this file (see tests/conftest.py)


def test_every_damaged_path_of_a_find_lr_folder_is_a_note_or_one_error_line(made, tmp_path, capsys):  # noqa: F811
    walk(made, tmp_path, capsys, "tiny-find-lr")
