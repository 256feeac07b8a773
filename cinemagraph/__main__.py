"""``cinemagraph COMMAND ...`` (also ``python -m cinemagraph COMMAND ...``)."""

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = {"render": "cinemagraph.cli.render", "download": "cinemagraph.download"}
    if not argv or argv[0] not in commands:
        print("usage: cinemagraph render IMAGE [--camera NAME] [options]  (cinemagraph render "
              "--help for the options)\n       cinemagraph download [NAMES] [--dir pretrained]",
              file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    from importlib import import_module

    return import_module(commands[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
