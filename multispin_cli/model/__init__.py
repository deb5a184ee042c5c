"""The system model: users, channels, acceptance, payload, verification time and the goodput of a round.

Pure computation in SI units; nothing here reads files or prints. Everything else builds on it.
"""
