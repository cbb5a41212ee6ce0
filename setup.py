"""Only what pyproject.toml cannot say.

* The top-level data/ folder is shipped as the package ``asyncpf.data`` (read through importlib.resources,
  see asyncpf/datafiles.py): pyproject's package finder cannot add a package that lives outside ``asyncpf/``.
* Build artefacts (build/, *.egg-info) go to a scratch folder removed when the build ends, not into the
  source tree, so `pip install .`, `pip wheel .` and editable installs leave the checkout as it was.
"""

import atexit
import shutil
import tempfile

from setuptools import find_packages, setup

scratch = tempfile.mkdtemp(prefix="asyncpf-build-")
atexit.register(shutil.rmtree, scratch, ignore_errors=True)
setup(packages=[*find_packages(include=["asyncpf*"]), "asyncpf.data"], package_dir={"asyncpf.data": "data"},
      options={"build": {"build_base": f"{scratch}/build"}, "egg_info": {"egg_base": scratch}})
