"""python -m bitgguf: the same as bitgguf-run."""
import sys

from bitgguf.cli import main

sys.exit(main())
