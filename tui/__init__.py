"""sentitune's Textual app. Importing this package imports nothing heavy; see tui.app."""
