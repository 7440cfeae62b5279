"""Allow ``python -m convfilter``."""

from convfilter.cli import main

if __name__ == "__main__":
    main()
