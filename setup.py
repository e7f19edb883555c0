"""Packaging beyond what pyproject.toml can say: the sample documents and the default config travel
inside the wheel (as ``servers/core/bundled/samples`` and ``servers/core/bundled/configs``) so that
``quiver demo`` and the defaults work from an installed wheel, while the repository keeps them at
``samples/`` and ``configs/``. Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

BUNDLED = {"servers.core.bundled.samples": "samples", "servers.core.bundled.configs": "configs"}

setup(
    packages=[*find_packages(include=["servers*", "host*"]), *BUNDLED],
    package_dir=BUNDLED,  # their files are listed under [tool.setuptools.package-data]
)
