"""python -m bitgguf: the same as bitgguf-run; `python -m bitgguf --cflags --libs` prints the C API's build flags."""
import sys

from bitgguf import _capi

if _capi.is_flags_request(sys.argv[1:]):
    sys.exit(_capi.main(sys.argv[1:]))

from bitgguf.cli import main  # noqa: E402

sys.exit(main())
