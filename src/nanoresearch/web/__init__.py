"""The dashboard: `nanoresearch ui` serves a user's runs as local web pages: the runs list, a run (live
timeline, stage plans with the knowledge recalled, ideas, blueprint, results, figures, lineage), its
budget charts, its paper with each number traced to results.json, comparing runs, the user's skills,
memory and planner versions, feedback and rollback (POSTs guarded against CSRF); `export --html`
writes a run as one offline page.

Pages are rendered on the server (Jinja2, autoescaped); the only script is static/live.js, so the
dashboard works offline and nothing a run wrote (goal, logs, diffs, LLM text) can run as code.
"""
