"""billportal's benchmarks: ``make bench`` (``python -m bench``) writes docs/benchmarks.md.

Not part of the product and not run by ``make test``: see docs/benchmarks.md for
what is measured, how, and against which bare reference.
"""
