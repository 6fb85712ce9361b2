"""Search: features of scheduled programs and traces, the cost models that rank them, the
mutators and evolutionary search that propose candidates, and the tuner that measures them."""

from .cost_model import CostModel, GBDTModel, RandomModel, pairwise_accuracy, top_k_score
from .evolutionary import Candidate, EvolutionarySearch, SearchConfig, SearchStrategy
from .features import FEATURE_NAMES, N_FEATURES, extract
from .mutators import MUTATORS, Choice, choices_of, mutate, mutator
from .trace_features import extract_trace
from .tuner import TuneResult, tune

__all__ = [
    "FEATURE_NAMES", "N_FEATURES", "CostModel", "GBDTModel", "RandomModel", "extract",
    "extract_trace", "pairwise_accuracy", "top_k_score",
    "MUTATORS", "Candidate", "Choice", "EvolutionarySearch", "SearchConfig", "SearchStrategy",
    "TuneResult", "choices_of", "mutate", "mutator", "tune",
]
