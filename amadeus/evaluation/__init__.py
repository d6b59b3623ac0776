"""Stage 6, evaluation: how good a model is. `likelihood` (whole held-out pieces, fp32 against
int8), `features` (generated against real, feature by feature), `adherence` (how well it
follows controls), `figures`, `run` (evaluate.py's run) and `report` (its headline and
report.md).

Imports data, model and generation (models are opened by `generate.loaded`); never live play.
"""
