"""Hermes TUI: the full-screen client of the Hermes gateway."""
