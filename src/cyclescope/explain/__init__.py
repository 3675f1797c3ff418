"""Turning captured objects into findings: cycles, groups, noise."""
