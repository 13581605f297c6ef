"""The suite's OpenCV-before-decord import (tests/conftest.py) keeps PNG writing working in every test order."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_a_png_written_after_decord_was_imported_reads_back(tmp_path):
    script = ("import tests.conftest, decord, cv2, numpy as np\n"
              f"path = {str(tmp_path / 'x.png')!r}\n"
              "image = np.arange(64 * 64 * 3, dtype=np.uint8).reshape(64, 64, 3)\n"
              "assert cv2.imwrite(path, image)\n"
              "back = cv2.imread(path)\n"
              "assert back is not None and (back == image).all()\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
