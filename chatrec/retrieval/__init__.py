"""Dense retrieval: local sentence-transformers embeddings and the Chroma index of items and templates."""
