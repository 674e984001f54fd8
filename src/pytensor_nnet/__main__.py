"""Command line: ``python -m pytensor_nnet bench [options]`` (the main job: the conv2d benchmark
table beside the installed peers). ``python -m pytensor_nnet bench --help`` lists the options."""

import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "bench":
        from pytensor_nnet.bench import main as bench_main

        return bench_main(rest)
    print(f"unknown command {command!r}; try: python -m pytensor_nnet bench --help", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
