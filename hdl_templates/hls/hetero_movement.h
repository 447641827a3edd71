// hetero: data movement without arithmetic (hetero/ops/reshape.py, transpose.py, pad.py,
// Dequantize): the raw values move, the type stays.
#ifndef HETERO_MOVEMENT_H
#define HETERO_MOVEMENT_H

#include "hetero_common.h"

namespace hetero {

// Reshape, Flatten, Squeeze, Dequantize...: the IR's flat order is kept; only the beats change.
template <class CFG>
void copy(HETERO_IN_STREAM(CFG) &in, HETERO_OUT_STREAM(CFG) &out) {
    HETERO_READ_INPUT(CFG, in, x);
    HETERO_OUTPUT(CFG, y);
Copy:
    for (int i = 0; i < CFG::n; i++) {
#pragma HLS PIPELINE II = 1
        y[i] = from_raw<typename CFG::out_t>(raw_of(x[i]));
    }
    HETERO_WRITE_OUTPUT(CFG, y, out);
}

// Transpose (up to 4 axes): output position (o0, o1, o2, o3) of dims d0..d3 reads the input
// at o0 * s0 + o1 * s1 + o2 * s2 + o3 * s3 (the input's strides, permuted).
template <class CFG>
void transpose(HETERO_IN_STREAM(CFG) &in, HETERO_OUT_STREAM(CFG) &out) {
    HETERO_READ_INPUT(CFG, in, x);
    HETERO_OUTPUT(CFG, y);
    int i = 0;
Transpose:
    for (int o0 = 0; o0 < CFG::d0; o0++)
        for (int o1 = 0; o1 < CFG::d1; o1++)
            for (int o2 = 0; o2 < CFG::d2; o2++)
                for (int o3 = 0; o3 < CFG::d3; o3++) {
#pragma HLS PIPELINE II = 1
                    y[i++] = from_raw<typename CFG::out_t>(raw_of(x[o0 * CFG::s0 + o1 * CFG::s1 + o2 * CFG::s2 + o3 * CFG::s3]));
                }
    HETERO_WRITE_OUTPUT(CFG, y, out);
}

// Constant Pad (up to 4 axes, pads >= 0): output position o reads the input at o - begin, or
// the raw constant outside it.
template <class CFG>
void pad(HETERO_IN_STREAM(CFG) &in, HETERO_OUT_STREAM(CFG) &out) {
    HETERO_READ_INPUT(CFG, in, x);
    HETERO_OUTPUT(CFG, y);
    int i = 0;
Pad:
    for (int o0 = 0; o0 < CFG::d0; o0++)
        for (int o1 = 0; o1 < CFG::d1; o1++)
            for (int o2 = 0; o2 < CFG::d2; o2++)
                for (int o3 = 0; o3 < CFG::d3; o3++) {
#pragma HLS PIPELINE II = 1
                    const int i0 = o0 - CFG::b0, i1 = o1 - CFG::b1, i2 = o2 - CFG::b2, i3 = o3 - CFG::b3;
                    const bool inside = i0 >= 0 && i0 < CFG::e0 && i1 >= 0 && i1 < CFG::e1 && i2 >= 0 &&
                                        i2 < CFG::e2 && i3 >= 0 && i3 < CFG::e3;
                    const raw_t v = inside ? raw_of(x[((i0 * CFG::e1 + i1) * CFG::e2 + i2) * CFG::e3 + i3]) : (raw_t)CFG::value;
                    y[i++] = from_raw<typename CFG::out_t>(v);
                }
    HETERO_WRITE_OUTPUT(CFG, y, out);
}

}  // namespace hetero

#endif
