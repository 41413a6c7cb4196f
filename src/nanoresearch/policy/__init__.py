"""Policy learning for the planner: one LoRA adapter per user, trained by SDPO on the user's feedback.

- `sdpo.py`: the loss and the optimizer step (student, teacher, advantages, reverse KL, anchor).
- `triples.py`: (prompt, output ids, feedback) triples from the store; the per-user replay buffer.
- `adapters.py`: versioned adapters in the user's folder, the active pointer, the planner model.
- `checks.py`: what an update did: gap, probe margin, drift; relevance of the feedback.
- `metrics.py`: the figures stored with each version (no torch, for `policy history`).
- `train.py`: one training round for a user, from pending feedback to a checked new version.
- `cli.py`: `nanoresearch policy train | status | history | rollback | reset`.

Nothing here imports torch at module level except `sdpo.py` and `checks.py`, which only the
training and loading paths import, so `nanoresearch --help` stays fast.
"""
