"""Build the Cython runtime with the C kernels in bitgguf/_kernels/.

Per-ISA kernels select their instruction set with `#pragma GCC target` inside their own file, so one
build runs on any CPU of its architecture and the runtime picks the variant from the CPU's features.
No -march=native here, ever. OpenMP is used when the compiler accepts it.
"""
import glob
import os
import subprocess
import sys
import tempfile
import warnings

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _compiler_accepts(cc, flags):
    """True when the C compiler builds and links a tiny OpenMP program with `flags`."""
    src = "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.c")
        with open(path, "w") as f:
            f.write(src)
        try:
            result = subprocess.run([cc, path, "-o", os.path.join(tmp, "t"), *flags],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            return False
        return result.returncode == 0


class BuildExt(build_ext):
    def build_extensions(self):
        cc = self.compiler.compiler_so[0] if hasattr(self.compiler, "compiler_so") else "cc"
        if self.compiler.compiler_type == "msvc":
            omp_compile, omp_link = ["/openmp"], []
        else:
            omp_compile, omp_link = ["-fopenmp"], ["-fopenmp"]
            if not _compiler_accepts(cc, omp_compile):
                warnings.warn("bitgguf: the C compiler does not accept -fopenmp; building single-threaded")
                omp_compile, omp_link = [], []
        for ext in self.extensions:
            ext.extra_compile_args += omp_compile
            ext.extra_link_args += omp_link
        build_ext.build_extensions(self)


kernel_sources = sorted(glob.glob(os.path.join("bitgguf", "_kernels", "*.c")))
base_cflags = [] if sys.platform == "win32" else ["-O3", "-std=gnu11", "-Wall", "-Wextra",
                                                  "-Wno-unused-function", "-fno-strict-aliasing"]

extensions = [
    Extension(
        "bitgguf._core",
        sources=[os.path.join("bitgguf", "_core.pyx"), *kernel_sources],
        include_dirs=[numpy.get_include(), os.path.join("bitgguf", "_kernels")],
        extra_compile_args=list(base_cflags),
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
]

setup(
    ext_modules=cythonize(extensions, language_level=3,
                          compiler_directives={"boundscheck": False, "wraparound": False}),
    cmdclass={"build_ext": BuildExt},
)
