"""Batch evaluation: replay logged conversations, score systems, baselines and ablations, summarise and report."""
