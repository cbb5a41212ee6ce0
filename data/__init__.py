"""The data files of data/README.md, installed as the package ``asyncpf.data`` (read via asyncpf.datafiles)."""
