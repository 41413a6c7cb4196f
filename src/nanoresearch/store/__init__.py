from nanoresearch.store.db import Store

__all__ = ["Store"]
