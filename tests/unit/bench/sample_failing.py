"""A benchmark stand-in for the summary runner's test: fails."""

import sys

if __name__ == "__main__":
    print("sample failing")
    sys.exit(3)
