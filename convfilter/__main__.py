"""Allow ``python -m convfilter``."""

from convfilter.entry import main

if __name__ == "__main__":
    main()
