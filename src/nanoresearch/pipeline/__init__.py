"""The research pipeline: ideation → planning → experiment → analysis → figures → writing → review."""
