"""The ``vidspan`` command-line interface."""
