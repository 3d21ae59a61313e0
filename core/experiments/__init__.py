"""Experiments: searching for settings rather than training with them. The learning-rate range test (lr_find),
and sweeps: their planning (plan), their record and study in the runs folder (record, study), the worker that
trains their points (worker), and starting workers here, in the background or one per GPU (launch)."""
