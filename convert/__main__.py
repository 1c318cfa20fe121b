"""python -m convert hf-to-gguf MODEL --outfile OUT.gguf --outtype TYPE
                                 [--head-type auto|f16|q8_0|q6_k|q5_k|q4_k|q4_0|f32]
   python -m convert gguf-to-gguf IN.gguf --outfile OUT.gguf --outtype TYPE

Errors print one line on stderr and exit with status 1; no output file is left behind.
"""
from __future__ import annotations

import argparse
import sys

from convert.gguf_out import HEAD_TYPES, OUTTYPES, convert_gguf_to_gguf, convert_hf_to_gguf
from convert.hf import ConvertError, resolve_model


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m convert", description="BitNet checkpoints -> ternary GGUF")
    sub = p.add_subparsers(dest="command", required=True)
    hf = sub.add_parser("hf-to-gguf", help="a Hugging Face checkpoint (folder or cached repo id) -> GGUF")
    hf.add_argument("model", help="checkpoint folder or Hugging Face repo id (owner/name)")
    hf.add_argument("--outfile", required=True, help="the GGUF file to write")
    hf.add_argument("--outtype", default="i2_s", choices=OUTTYPES, help="type of the ternary linear weights")
    hf.add_argument("--head-type", default="auto", choices=HEAD_TYPES,
                    help="type of token_embd (also the tied output head); auto: q5_k (within 0.5%% perplexity of "
                         "f16), or q8_0 / f16 where the width is not a multiple of 256")
    hf.add_argument("--name", default=None, help="general.name (default: the model folder's name)")
    hf.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                    help="show a progress bar (default: when stderr is a terminal)")
    gg = sub.add_parser("gguf-to-gguf", help="re-type the ternary tensors of a GGUF losslessly")
    gg.add_argument("infile")
    gg.add_argument("--outfile", required=True)
    gg.add_argument("--outtype", required=True, choices=OUTTYPES)
    gg.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "hf-to-gguf":
            folder = resolve_model(args.model)
            result = convert_hf_to_gguf(folder, args.outfile, args.outtype, args.head_type, name=args.name,
                                        progress=args.progress)
        else:
            result = convert_gguf_to_gguf(args.infile, args.outfile, args.outtype, progress=args.progress)
    except ConvertError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:  # I/O trouble or a type-table refusal: still one clear line
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; no output written", file=sys.stderr)
        return 1
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {result.outfile}: arch {result.arch}, {result.n_tensors} tensors", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
