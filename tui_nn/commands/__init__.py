"""The CLI command bodies (train, inspect, runs, control, plot, ...) and their plain/rich
console output. cli.py parses options and calls them; none of them is imported for --help."""
