"""Maintainer tools (not part of the model): ``python -m asyncpf.tools.<name>``."""
