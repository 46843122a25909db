"""Lessons that train: runners that drive the engine's Trainer for a lesson view (the sequence
models' accuracy table, the overfitting comparison). Above the engine; the insight package
below it only computes."""
