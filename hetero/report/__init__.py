"""Reports: CPU/GPU baselines, energy, plots, the HTML report, the layer table."""
