"""The RTL backend: the Amaranth top level and its Verilog."""
