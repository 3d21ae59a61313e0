"""Training a run: setup checks, the Trainer session, events, stops, several processes, detached runs."""
