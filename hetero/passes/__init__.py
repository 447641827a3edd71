"""The compile pipeline: graph -> graph passes, precision, calibration, folding."""
