"""A benchmark stand-in for the summary runner's test: loads the settings as benchmarks do, records a figure."""

from bench.summary import record
from tickwave.config import load_settings

if __name__ == "__main__":
    load_settings()  # refuses unknown TICKWAVE_* variables: the runner's own must not be one
    record("decode", 1.5, "us", baseline="json 6 us", target="< 2 us", is_met=True)
    print("sample ok")
