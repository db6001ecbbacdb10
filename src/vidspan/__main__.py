"""``python -m vidspan``: the same command line as ``vidspan``."""

from vidspan.cli.main import main

if __name__ == "__main__":
    main()
