"""The HLS C++ backend: a Vitis HLS project (AXI4-Stream top, DATAFLOW across layers) rendered
from the typed graph with Jinja2 templates in ``hdl_templates/hls``, and its C simulation with
g++ checked bit for bit against the reference (``hetero csim``)."""
