"""End-to-end flows behind the commands: compile, synth, sim, csim."""
