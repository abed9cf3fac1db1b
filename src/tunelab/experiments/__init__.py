"""Running many runs: Hydra sweeps (`tunelab train -m`), DVC experiments (`tunelab
experiment`) and side-by-side comparison of runs (`tunelab compare`)."""
