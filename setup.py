"""Build the Cython runtime with the C kernels in bitgguf/_kernels/.

Per-ISA kernels select their instruction set with `#pragma GCC target` inside their own file, so one
build runs on any CPU of its architecture and the runtime picks the variant from the CPU's features.
No -march=native here, ever. OpenMP is used when the compiler accepts it.

The C sources are compiled once and linked twice: into the extension bitgguf._core, and into the plain shared
library bitgguf/libbitgguf.so (.dylib on macOS; no Python symbols) that C programs use through
bitgguf/include/bitgguf.h (bitgguf.get_include(), bitgguf.get_library(), `python -m bitgguf --cflags --libs`).
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

try:
    from setuptools.errors import LinkError
    from setuptools.modified import newer_group
except ImportError:  # setuptools < 69
    from distutils.dep_util import newer_group
    from distutils.errors import LinkError


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
                warnings.warn("bitgguf: the C compiler does not accept -fopenmp; building without OpenMP",
                              stacklevel=2)
                omp_compile, omp_link = [], []
            # the engine's thread pool is pthreads (glibc before 2.34 keeps them in a separate libpthread)
            omp_compile, omp_link = omp_compile + ["-pthread"], omp_link + ["-pthread"]
        if self.compiler.compiler_type != "msvc":
            objects = self._build_library(omp_compile, omp_link)
            for ext in self.extensions:  # the extension links the same objects
                ext.sources = [s for s in ext.sources if os.path.normpath(s) not in kernel_sources]
                ext.extra_objects = list(ext.extra_objects or []) + objects
                ext.depends = list(ext.depends or []) + kernel_sources + kernel_headers
        for ext in self.extensions:
            ext.extra_compile_args += omp_compile
            ext.extra_link_args += omp_link
        build_ext.build_extensions(self)

    def _package_dir(self):
        return os.path.join(self.build_lib, "bitgguf")

    def copy_extensions_to_source(self):
        """--inplace: setuptools builds into build_lib and copies the extension over; the library goes along."""
        build_ext.copy_extensions_to_source(self)
        if not os.path.exists(getattr(self, "_library", "")):
            return
        name = os.path.basename(self._library)
        dest = os.path.join(self.get_finalized_command("build_py").get_package_dir("bitgguf"), name)
        self.copy_file(self._library, dest, level=self.verbose)

    def _build_library(self, omp_compile, omp_link):
        """Compile bitgguf/_kernels/*.c once (symbols hidden except bitgguf.h's) and link libbitgguf from them;
        returns the objects."""
        name = "libbitgguf.dylib" if sys.platform == "darwin" else "libbitgguf.so"
        out = self._library = os.path.join(self._package_dir(), name)
        objects = self.compiler.object_filenames(kernel_sources, output_dir=self.build_temp)
        inputs = kernel_sources + kernel_headers + [__file__]
        if self.force or not all(os.path.exists(o) for o in objects) or newer_group(inputs, out):
            objects = self.compiler.compile(kernel_sources, output_dir=self.build_temp,
                                            include_dirs=[os.path.join("bitgguf", "_kernels")],
                                            extra_postargs=base_cflags + omp_compile + ["-fvisibility=hidden"])
            # Linux: fail at link time, not at the user's dlopen, if a symbol is missing
            link_args = (["-install_name", "@rpath/" + name] if sys.platform == "darwin"
                         else ["-Wl,-soname," + name, "-Wl,--no-undefined"])
            os.makedirs(os.path.dirname(out), exist_ok=True)
            linker_so = self.compiler.linker_so
            if sys.platform == "darwin":  # Python links extensions as bundles; a library others link is a dylib
                drop = {"-bundle", "-undefined", "dynamic_lookup"}
                self.compiler.linker_so = [a for a in linker_so if a not in drop] + ["-dynamiclib"]
            try:
                self.compiler.link_shared_object(objects, out, libraries=["m"], extra_postargs=omp_link + link_args)
            except LinkError as e:  # the Python extension does not need the library: say so and go on
                warnings.warn(f"bitgguf: could not link {name} ({e}); the C API (bitgguf.get_library()) will be "
                              "missing", stacklevel=2)
            finally:
                self.compiler.linker_so = linker_so
        # the header and .pxd travel with the library (wheels get them even without package data)
        dest = os.path.join(self._package_dir(), "include")
        os.makedirs(dest, exist_ok=True)
        for f in glob.glob(os.path.join("bitgguf", "include", "*")):
            shutil.copy(f, dest)
        return objects


kernel_sources = sorted(os.path.normpath(p) for p in glob.glob(os.path.join("bitgguf", "_kernels", "*.c")))
kernel_headers = sorted(glob.glob(os.path.join("bitgguf", "_kernels", "*.h")) +
                        glob.glob(os.path.join("bitgguf", "include", "*.h")))
base_cflags = [] if sys.platform == "win32" else ["-O3", "-std=gnu11", "-Wall", "-Wextra",
                                                  "-Wno-unused-function", "-fno-strict-aliasing", "-ffp-contract=off"]

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
