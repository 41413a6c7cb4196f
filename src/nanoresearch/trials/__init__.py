"""The closed trial loop: tasks, trials with lineage, legality, evaluation."""
