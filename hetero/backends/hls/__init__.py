"""The HLS backend: a Vitis HLS project rendered from hdl_templates/hls."""
