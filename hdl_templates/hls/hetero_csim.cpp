// hetero: the C simulation as one translation unit (the ap_types headers are parsed once).
#include "hetero_top.cpp"
#include "hetero_tb.cpp"
