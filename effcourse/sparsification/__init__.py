"""Chapter 6 (Savarese 2025, ch. 4): continuous sparsification (CS) and its pruning baselines."""

from .cs import ContinuousSparsifier, continuous_sparsification, cs_ticket_search

__all__ = ["ContinuousSparsifier", "continuous_sparsification", "cs_ticket_search"]
