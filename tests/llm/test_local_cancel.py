"""Ctrl-C while the embedded model decodes stops it within seconds, on both engines.

Python acts on a signal only between calls into native code. transformers' forward pass is Python, so
it stops between layers; llama.cpp took a prompt in batches of 512 tokens per call, which kept a Ctrl-C
(or the SIGTERM a run turns into one) waiting 13-30 s on a busy machine; it now takes 16 at a time. The
bound is generous (a loaded 2-core machine); the latency measured is printed (`pytest -s`).
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow

BOUND_S = 10.0
WAIT_S = 600  # loading the model (and converting it, the first time) before the clock starts

# The child decodes a ~7,000-token prompt: fed 512 tokens a call, each call takes seconds on a CPU.
CHILD = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # a child of a shell that ignores SIGINT would too
from nanoresearch.config import load_settings
from nanoresearch.llm.client import LLM
from nanoresearch.store import Store

settings = load_settings({"llm": {"replay": "off"}, "local": {"engine": sys.argv[1]}})
store = Store(settings.db_path)
llm = LLM(settings, store, store.ensure_user("alice"))
llm.complete("Say hi.", max_tokens=2)  # loaded before the clock starts
notes = " ".join(f"Note {i}: trial {i} of the digits model reached {i % 97} percent accuracy." for i in range(330))
print("decoding", flush=True)
try:
    llm.complete("Summarise these notes in one paragraph. " + notes, max_tokens=1500)
    print("finished", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""

ENGINES = [
    "transformers",
    pytest.param("llama_cpp", marks=pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed (the 'fast' extra)")),
]


@pytest.mark.parametrize("engine", ENGINES)
def test_ctrl_c_stops_local_decoding_within_seconds(engine: str) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD, engine], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "decoding"
        time.sleep(1.0)  # into the prompt
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        answer = child.stdout.readline().strip()
        latency = time.monotonic() - sent
    finally:
        child.kill()
        child.wait(timeout=WAIT_S)
    print(f"{engine}: Ctrl-C stopped decoding after {latency:.2f} s")
    assert answer == "interrupted"
    assert latency < BOUND_S
