"""The app's widgets. Each takes its data as attributes and reports user intent as messages."""
