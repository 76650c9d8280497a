"""Command line: ``python -m neurosens {info,data,train,evaluate,book}``."""
