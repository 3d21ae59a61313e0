"""Run folders: their layout, reading and listing them, locks, checkpoints, and what a report shows."""
