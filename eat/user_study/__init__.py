"""Table 2's user study kit: :mod:`assemble` picks the same MEAD test clips for every method, copies the videos
under blind names and writes the key; :mod:`page` writes the static rating page (lip-sync 1–5, quality 1–5,
emotion among 8; ratings saved as a JSON download); :mod:`ratings` turns the collected files into Table 2."""
