"""Co-evolution services used around every stage: the planner, recall of skills and memory, reflection into memory, and skill distillation."""
