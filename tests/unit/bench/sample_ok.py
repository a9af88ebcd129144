"""A benchmark stand-in for the summary runner's test: records one figure."""

from bench.summary import record

if __name__ == "__main__":
    record("decode", 1.5, "us", baseline="json 6 us", target="< 2 us", is_met=True)
    print("sample ok")
