"""Deciding what to run: the router, params, authority, and the runbooks' own test cases."""
