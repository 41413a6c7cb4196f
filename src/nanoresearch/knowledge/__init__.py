"""What NanoResearch knows across runs, per user: skills (skillbank.py), memory records (memory.py),
found by one hybrid retriever (retrieval.py) over embeddings (embeddings.py) and text."""
