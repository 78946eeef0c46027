"""Experiment configs, runners and the ``photonic-backprop`` command line."""
