"""EAT reproduction: data, models, training and evaluation of Gan et al., ICCV 2023."""

# OpenCV is loaded before anything can load decord: decord's wheel carries its own zlib, and when decord is loaded
# first, OpenCV's PNG codec writes files it cannot read back ("libpng error: bad parameters to zlib"; found when a
# test module that imports decord ran before one that writes a PNG photo).
import cv2  # noqa: F401
