"""Build the example against the installed bitgguf: python setup.py build_ext --inplace"""
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

import bitgguf

lib = bitgguf.get_library()
lib_dir = os.path.dirname(lib)
ext = Extension(
    "greedy",
    sources=["greedy.pyx"],
    include_dirs=[bitgguf.get_include()],
    library_dirs=[lib_dir],
    libraries=["bitgguf"],
    extra_link_args=[f"-Wl,-rpath,{lib_dir}"],  # found at run time where the package is installed (Linux, macOS)
)

setup(name="bitgguf-greedy-example", ext_modules=cythonize([ext], include_path=[bitgguf.get_include()],
                                                         language_level=3))
