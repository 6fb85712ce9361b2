"""Search: features of scheduled programs and traces, the cost models that rank them, the
mutators and search strategies that propose candidates, the database that keeps every
measurement, and the tuner that composes them."""

from .annealing import AnnealingConfig, SimulatedAnnealing
from .callbacks import DatabaseSink, MeasureCallback, ProgressBar, StrategyFeedback, UpdateCostModel
from .cost_model import CostModel, GBDTModel, RandomModel, pairwise_accuracy, top_k_score
from .events import JsonLines, TuneLog
from .evolutionary import EvolutionarySearch, SearchConfig
from .features import FEATURE_NAMES, N_FEATURES, FeatureCache, extract
from .mutators import MUTATORS, Choice, choices_of, mutate, mutator
from .rounds import RoundSummary, TuneStart
from .strategy import Candidate, SearchStrategy
from .trace_features import extract_trace
from .tuner import TuneResult, tune

__all__ = [
    "FEATURE_NAMES", "N_FEATURES", "CostModel", "GBDTModel", "RandomModel", "extract",
    "extract_trace", "pairwise_accuracy", "top_k_score", "FeatureCache",
    "MUTATORS", "Candidate", "Choice", "EvolutionarySearch", "SearchConfig", "SearchStrategy",
    "DatabaseSink", "MeasureCallback", "ProgressBar", "StrategyFeedback", "UpdateCostModel",
    "TuneResult", "choices_of", "mutate", "mutator", "tune",
    "JsonLines", "RoundSummary", "TuneLog", "TuneStart", "AnnealingConfig", "SimulatedAnnealing",
]
