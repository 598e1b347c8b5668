"""OrderChat benchmarks: real server processes measured against simple local references.

Run `python -m bench` for every workload, or `python -m bench WORKLOAD ...` for some.
"""
