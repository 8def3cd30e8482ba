"""pocctl's benchmark suite (`make bench`): everything on the embedded AWS on 127.0.0.1.

Run ``python -m bench --help``. Results go to BENCHMARKS.md together with the command.
"""
