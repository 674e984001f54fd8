"""Command line.

    python -m pytensor_nnet demo [options]    train a LeNet on handwritten digits (needs the
                                              "demo" extra), print the test accuracy and
                                              timings, write a PNG; --bayes for the PyMC twin
    python -m pytensor_nnet bench [options]   the conv2d benchmark table beside the installed peers

``python -m pytensor_nnet demo --help`` and ``... bench --help`` list the options.
"""

import sys

COMMANDS = ("demo", "bench")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "demo":
        from pytensor_nnet.demo.cli import main as demo_main

        return demo_main(rest)
    if command == "bench":
        from pytensor_nnet.bench import main as bench_main

        return bench_main(rest)
    print(f"unknown command {command!r}; try: python -m pytensor_nnet demo (or bench) --help", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
