"""The tracker's pure logic: no `js`, `workers` or `pyodide` imports here.

Everything in this package runs unchanged in CPython (unit tests, benchmarks)
and in the Worker's Pyodide. The thin runtime glue lives in `src/runtime/`.
"""
