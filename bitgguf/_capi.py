"""Where the C API lives in an installed bitgguf: the header folder, the shared library, compiler flags.

    cc prog.c $(python -m bitgguf --cflags --libs)

Like numpy.get_include(): these find the files inside the installed package, so C and Cython builds work
against whatever bitgguf the current Python imports.
"""
from __future__ import annotations

import os
import sys

_PKG = os.path.dirname(os.path.abspath(__file__))
LIBRARY_NAME = "libbitgguf.dylib" if sys.platform == "darwin" else "libbitgguf.so"


def get_include() -> str:
    """The folder holding bitgguf.h (and bitgguf.pxd, for Cython's include_path)."""
    return os.path.join(_PKG, "include")


def get_library() -> str:
    """The path of the shared library (libbitgguf.so / .dylib) that bitgguf.h declares. Raises FileNotFoundError
    when the package was installed without it (a build without a C compiler)."""
    path = os.path.join(_PKG, LIBRARY_NAME)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing: bitgguf was built without its C library "
                                "(reinstall with a C compiler, or run `python setup.py build_ext --inplace`)")
    return path


def cflags() -> list[str]:
    return [f"-I{get_include()}"]


def libs() -> list[str]:
    """Linker flags; the rpath lets the program find the library where the package is installed."""
    lib_dir = os.path.dirname(get_library())
    return [f"-L{lib_dir}", f"-Wl,-rpath,{lib_dir}", "-lbitgguf"]


def main(argv: list[str]) -> int:
    """`python -m bitgguf --cflags --libs`: print the requested flags on one line (like pkg-config)."""
    out = []
    for arg in argv:
        if arg == "--cflags":
            out += cflags()
        elif arg == "--libs":
            out += libs()
        elif arg == "--include-dir":
            out.append(get_include())
        elif arg == "--library":
            out.append(get_library())
        else:
            print(f"python -m bitgguf: {arg} cannot be combined with --cflags/--libs "
                  "(flags: --cflags, --libs, --include-dir, --library)", file=sys.stderr)
            return 2
    print(" ".join(out))
    return 0


def is_flags_request(argv: list[str]) -> bool:
    return bool(argv) and argv[0] in ("--cflags", "--libs", "--include-dir", "--library")
