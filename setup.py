"""Ships conf/ inside the package as cnnlab/conf, so an installed cnnlab (a wheel, `pip install .`)
finds its configs from any folder; everything else is in pyproject.toml. conf/ stays at the
repository root, where the configs are edited and the tests compose them."""
from setuptools import find_packages, setup

setup(
    packages=[*find_packages("src"), "cnnlab.conf"],
    package_dir={"": "src", "cnnlab.conf": "conf"},
    package_data={"cnnlab": ["data/sources/*.npz"], "cnnlab.conf": ["**/*.yaml"]},
)
