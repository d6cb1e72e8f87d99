"""Widgets: each renders part of the controller's state and forwards the user's input to it."""
