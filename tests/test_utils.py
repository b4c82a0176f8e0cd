"""What every layer needs: argument parsing, atomic writes, safe loading."""
import os
import pickle

import pytest
import torch

import utils


def test_parse_int_list_accepts_both_forms():
    assert utils.parse_int_list(["60", "60", "40", "40"]) == [60, 60, 40, 40]
    assert utils.parse_int_list(["60,60,40,40"]) == [60, 60, 40, 40]
    with pytest.raises(utils.UserError, match="whole numbers"):
        utils.parse_int_list(["6a"])


def test_atomic_save_and_safe_load(tmp_path):
    path = tmp_path / "x.pth"
    utils.save_atomic({"a": torch.ones(2), "names": ["x"]}, path)
    assert utils.load_checkpoint(path)["names"] == ["x"]
    assert oct(path.stat().st_mode & 0o777) == oct(0o644 & ~_umask())
    assert [p.name for p in tmp_path.iterdir()] == ["x.pth"]  # no temp file left


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "payload": _Exploit()}, path)
    with pytest.raises(utils.UserError, match="refusing to load"):
        utils.load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()
    path.write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(utils.UserError, match="refusing to load"):
        utils.load_checkpoint(path)


def test_failed_save_leaves_previous_file(tmp_path):
    path = tmp_path / "x.pth"
    utils.save_atomic({"v": 1}, path)
    with pytest.raises(Exception):
        utils.save_atomic({"v": lambda: 0}, path)  # lambdas cannot be pickled
    assert utils.load_checkpoint(path) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.pth"]




def test_atomic_write_keeps_the_old_file_when_the_block_fails(tmp_path):
    path = tmp_path / "table.md"
    path.write_text("old\n")
    with pytest.raises(RuntimeError):
        with utils.atomic_write(path) as file:
            file.write("new, half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["table.md"]
    with utils.atomic_write(path) as file:
        file.write("new\n")
    assert path.read_text() == "new\n" and [p.name for p in tmp_path.iterdir()] == ["table.md"]
    utils.write_json_atomic({"a": [1, 2]}, tmp_path / "x.json")
    assert (tmp_path / "x.json").read_text() == '{\n "a": [\n  1,\n  2\n ]\n}\n'
