"""Resources and timing: Yosys, nextpnr, the analytic Fmax and the analytic estimate."""
