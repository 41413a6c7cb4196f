"""The dashboard: `nanoresearch ui` serves a user's runs, stages and trial lineage as local web pages.

Pages are rendered on the server (Jinja2, autoescaped); the only script is static/live.js, so the
dashboard works offline and nothing a run wrote (goal, logs, diffs, LLM text) can run as code.
"""
