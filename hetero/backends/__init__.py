"""Generators: the RTL top level (Amaranth) and the HLS C++ project."""
