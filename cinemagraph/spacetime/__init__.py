"""The learned feature network and image decoder: networks (:mod:`.network`), where the
correction applies (:mod:`.rules`), output ensembles (:mod:`.ensemble`) and their int8
storage (:mod:`.storage`), weight files (:mod:`.weights`) and the pipeline components
(:mod:`.components`)."""

from .components import WORK_SIZE, LearnedDecoder, LearnedFeatures, learned_components
from .ensemble import SpaceTimeEnsemble
from .network import PRESETS, SpaceTimeModel
from .rules import DecodeRules
from .weights import OWN_WEIGHTS, find_spacetime, load_spacetime, save_ensemble, save_spacetime

__all__ = ["OWN_WEIGHTS", "PRESETS", "WORK_SIZE", "DecodeRules", "LearnedDecoder",
           "LearnedFeatures", "SpaceTimeEnsemble", "SpaceTimeModel", "find_spacetime",
           "learned_components", "load_spacetime", "save_ensemble", "save_spacetime"]
