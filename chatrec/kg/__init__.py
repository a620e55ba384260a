"""The knowledge graph: facts, labels and paths between items and entities."""
