"""Records of what made a result: atomic writes, fingerprints, comparisons."""
import os
import stat

import numpy as np
import pytest

from recon_jax import provenance


def test_atomic_write_leaves_no_temporary_and_an_ordinary_mode(tmp_path):
  path = tmp_path / "sub" / "a.json"
  provenance.write_json_atomic(str(path), {"b": np.float32(1.5), "a": [1, 2]})
  assert provenance.read_json(str(path)) == {"a": [1, 2], "b": 1.5}
  assert os.listdir(path.parent) == ["a.json"]
  mask = os.umask(0)
  os.umask(mask)
  # mkstemp's 0600 would hide results from anyone else reading the folder.
  assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~mask


def test_damaged_json_is_named(tmp_path):
  path = tmp_path / "made_by.json"
  path.write_text('{"data": "ab')
  with pytest.raises(provenance.CorruptFileError, match="made_by.json is "
                     "damaged.*delete it"):
    provenance.read_json(str(path))


def test_npz_cells_roundtrip_whole_and_a_damaged_one_is_named(tmp_path):
  path = tmp_path / "cells" / "backprop_L3.npz"
  arrays = {"reconstructions": np.arange(6.0).reshape(2, 3),
            "left_out": np.array([False, True]), "decoder_source": "d/x"}
  provenance.write_npz_atomic(str(path), arrays)
  assert os.listdir(path.parent) == ["backprop_L3.npz"]
  back = provenance.read_npz(str(path))
  assert set(back) == set(arrays)
  np.testing.assert_array_equal(back["reconstructions"],
                                arrays["reconstructions"])
  assert str(back["decoder_source"]) == "d/x"
  path.write_bytes(path.read_bytes()[:40])  # a half-written cell
  with pytest.raises(provenance.CorruptFileError, match="backprop_L3.npz is "
                     "damaged.*delete it to recompute that cell"):
    provenance.read_npz(str(path))


def test_fingerprints_see_values_shapes_and_structure():
  a = {"w": np.arange(6, dtype=np.float32)}
  fp = provenance.fingerprint_arrays(a)
  assert fp == provenance.fingerprint_arrays(
      {"w": np.arange(6, dtype=np.float32)})
  b = {"w": np.arange(6, dtype=np.float32)}
  b["w"][3] = 0.5
  assert provenance.fingerprint_arrays(b) != fp
  assert provenance.fingerprint_arrays(
      {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}) != fp
  assert provenance.fingerprint_arrays(
      {"v": np.arange(6, dtype=np.float32)}) != fp
  assert provenance.fingerprint_json({"a": 1, "b": 2}) == (
      provenance.fingerprint_json({"b": 2, "a": 1}))


def test_a_record_is_compared_before_anything_is_written(tmp_path):
  path = str(tmp_path / "made_by.json")
  record = {"data": "abc", "config": {"lr": 0.1, "steps": 10}}
  provenance.check_or_write_record(path, record, "the results")
  before = open(path).read()
  assert provenance.check_record(path, record, "the results")
  other = {"data": "xyz", "config": {"lr": 0.1, "steps": 20}}
  with pytest.raises(provenance.ProvenanceError) as e:
    provenance.check_or_write_record(path, other, "the results in X",
                                     remedy="use a new --workdir")
  message = str(e.value)
  assert "the results in X was made by another run" in message
  assert "data: was 'abc', now 'xyz'" in message
  assert "config.steps: was 10, now 20" in message
  assert "lr" not in message
  assert open(path).read() == before


def test_remote_work_dirs_are_refused():
  with pytest.raises(ValueError, match="gs://"):
    provenance.check_workdir("gs://bucket/run")
