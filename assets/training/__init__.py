"""Assets of the training domain: the grid of cells (`grid.py`), built from `[training]`."""

import dagster as dg

from assets.resources import TrainingResource
from assets.training.grid import grid_assets


def definitions(training: TrainingResource) -> dg.Definitions:
    return dg.Definitions(assets=grid_assets(training))
