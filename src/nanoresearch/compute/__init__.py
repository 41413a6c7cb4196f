"""Where trials run: executors behind one protocol, the sandbox, and the budget."""
