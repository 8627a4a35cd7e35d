"""setuptools shim: cffi's build hook is a setup() keyword only."""

from setuptools import setup

setup(cffi_modules=["snabbpy/native_build.py:ffibuilder"])
