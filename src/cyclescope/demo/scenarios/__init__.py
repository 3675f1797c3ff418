"""Self-contained reproductions of real reference-cycle bugs, runnable inside cached venvs."""
