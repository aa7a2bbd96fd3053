"""Running one job: the process that hosts user code, and the parent that watches it."""
