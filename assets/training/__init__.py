"""Assets of the training domain: the grid of cells (`grid.py`), built from `[training]`, and
stage 2 of the hierarchy (`stage2.py`: heads on the unimodal corpora and their MELD features),
built from `[stage2]`; LDA-PLDA and the two-stage method on the corpora (`corpus_methods.py`), built
from `[plda]` and `[two_stage]`."""

import dagster as dg

from assets.resources import PldaResource, Stage2Resource, TrainingResource, TwoStageResource
from assets.training.corpus_methods import corpus_method_assets
from assets.training.grid import grid_assets
from assets.training.stage2 import stage2_assets


def definitions(training: TrainingResource, stage2: Stage2Resource | None = None, plda: PldaResource | None = None,
                two_stage: TwoStageResource | None = None) -> dg.Definitions:
    stage2 = stage2 or Stage2Resource()
    wanted = {m.removeprefix("stage2_") for subset in training.modality_sets for m in subset if m.startswith("stage2_")}
    if missing := sorted(wanted - set(stage2.modalities)):
        raise ValueError(f"[training] modality_sets name stage2_{', stage2_'.join(missing)}, but [stage2] "
                         f"modalities = {stage2.modalities} has no such head")
    return dg.Definitions(assets=[*grid_assets(training), *stage2_assets(stage2),
                                  *corpus_method_assets(plda or PldaResource(), two_stage or TwoStageResource())])
