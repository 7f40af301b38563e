"""The widgets of the main window; they draw state and say what the user wants."""
