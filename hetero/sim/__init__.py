"""Running a backend on inputs: Verilator (native harness and cocotb), g++ C simulation."""
