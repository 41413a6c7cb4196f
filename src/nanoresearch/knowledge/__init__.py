"""What NanoResearch knows across runs: embeddings now; skills and memory build on them."""
