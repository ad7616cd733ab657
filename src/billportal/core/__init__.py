"""The foundations every layer may use: settings, errors, sealing, money, the clock and metrics.

Nothing here imports another part of billportal (see docs/architecture.md for the layers).
"""
