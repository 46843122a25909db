"""Insight views, computation only: gradient flow, activation curves, the loss landscape of the
seed's linear model, live regression fits, classifier views, sequence comparisons and the
autograd graph.

Every function returns plain dataclasses of floats, ints, strings and lists, small enough to
send in a message and cheap enough to recompute at the UI's refresh rate. Rendering lives
elsewhere: the Textual panes (tui_nn.tui) and the plain-terminal plots (tui_nn.commands).
This package never imports textual, typer, rich or plotext.

Modules are imported on demand (``from tui_nn.insight.gradflow import GradientMonitor``) so
that importing one view does not pay for the others.
"""
