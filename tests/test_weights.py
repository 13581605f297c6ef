"""The weights registry: a missing or corrupt file is a clear error naming the file and where to put it."""

from __future__ import annotations

import hashlib

import pytest

from eat.preprocess.landmarks import make_detector
from eat.weights import REGISTRY, REPO, WeightsError, resolve


def test_missing_weights_name_the_file_and_the_folder(tmp_path):
    with pytest.raises(WeightsError, match=rf"put 2DFAN4-cd938726ad\.zip in {tmp_path}/"):
        resolve("fan_2d", tmp_path)


def test_the_repository_weights_folder_is_named_relative_so_metrics_match_across_clones(monkeypatch):
    # the message lands in metrics.json (substitute notes): an absolute clone path would differ on every machine
    monkeypatch.delenv("EAT_WEIGHTS_DIR", raising=False)
    entry = REGISTRY["s3fd"]
    monkeypatch.setitem(REGISTRY, "s3fd", type(entry)(entry.name, "never-shipped.pth", "", entry.source,
                                                      entry.used_by))
    with pytest.raises(WeightsError) as err:
        resolve("s3fd")
    assert "put never-shipped.pth in weights/ " in str(err.value) and str(REPO) not in str(err.value)


def test_wrong_checksum_is_rejected(tmp_path):
    (tmp_path / REGISTRY["s3fd"].filename).write_bytes(b"not the s3fd weights")
    with pytest.raises(WeightsError, match="corrupt or a different release"):
        resolve("s3fd", tmp_path)


def test_matching_checksum_resolves(tmp_path, monkeypatch):
    payload = b"weights"
    entry = REGISTRY["s3fd"]
    monkeypatch.setitem(REGISTRY, "s3fd", type(entry)(entry.name, entry.filename,
                                                      hashlib.sha256(payload).hexdigest()[:10], entry.source,
                                                      entry.used_by))
    (tmp_path / entry.filename).write_bytes(payload)
    assert resolve("s3fd", tmp_path) == tmp_path / entry.filename


def test_fan_backend_without_weights_fails_before_any_download(tmp_path):
    with pytest.raises(WeightsError, match="crop_align backend 'fan'"):
        make_detector("fan", str(tmp_path))


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(ValueError, match="mediapipe or fan"):
        make_detector("dlib")
