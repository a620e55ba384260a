"""The stages of one turn: guard, pii, state, route, profile, rank, ground, compose, plan."""
