"""Where trials run: executors behind one protocol, the sandbox, and the budget."""

# Importing the built-in executors registers them (executor.EXECUTORS) before anyone can ask for
# one; Ray itself is imported only when a Ray executor connects.
from nanoresearch.compute import local, ray_executor, slurm  # noqa: F401
