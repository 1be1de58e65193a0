"""The ``audiolatent`` command line (thin: parses arguments, calls the Python API)."""
