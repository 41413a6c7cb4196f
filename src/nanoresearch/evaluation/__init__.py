"""The evaluation harness: `eval run`, `eval search` and `eval report` (docs/evaluation.md)."""
