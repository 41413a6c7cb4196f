"""Model calls: one client (recorded, replayable, budgeted) in front of pluggable providers."""

# Importing the built-in providers registers them (provider.PROVIDERS) before anyone can ask for
# one; each imports its vendor's SDK only when it is used.
from nanoresearch.llm import anthropic_api, local, openai_compat  # noqa: F401
