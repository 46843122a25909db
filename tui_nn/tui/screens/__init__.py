"""The app's screens: the main screen (model, train, log tabs) and modal dialogs."""
