"""Only what pyproject.toml cannot say: ship the top-level data/ folder as the package ``asyncpf.data``.

pyproject's package finder cannot add a package that lives outside the ``asyncpf/`` tree, so the packages
are found here and ``data/`` is mapped in (read through ``importlib.resources``, see asyncpf/datafiles.py).
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["asyncpf*"]), "asyncpf.data"], package_dir={"asyncpf.data": "data"})
