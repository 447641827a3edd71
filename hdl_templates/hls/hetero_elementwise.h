// hetero: elementwise arithmetic (hetero/ops/scale_shift.py, quantize.py, add.py, concat.py).
#ifndef HETERO_ELEMENTWISE_H
#define HETERO_ELEMENTWISE_H

#include "hetero_common.h"

namespace hetero {

// y = requant(x - zero_point, mult[i], add[i]) (ScaleShift, a model's Quantize); mult and add
// hold one value, or one per element. CFG::bipolar: y = x - zero_point >= 0 ? 1 : -1.
template <class CFG>
void requant_map(HETERO_IN_STREAM(CFG) &in, HETERO_OUT_STREAM(CFG) &out, const typename CFG::mult_t mult[],
                 const typename CFG::add_t add[]) {
    HETERO_READ_INPUT(CFG, in, x);
    HETERO_OUTPUT(CFG, y);
RequantMap:
    for (int i = 0; i < CFG::n; i++) {
#pragma HLS PIPELINE II = 1
        const raw_t c = raw_of(x[i]) - CFG::zero_point;
        const int k = CFG::rq::n_mult == 1 ? 0 : i;
        const raw_t v = CFG::bipolar ? (c >= 0 ? 1 : -1) : requant<typename CFG::rq>(c, mult[k], add[k]);
        y[i] = from_raw<typename CFG::out_t>(v);
    }
    HETERO_WRITE_OUTPUT(CFG, y, out);
}

// A constant bias per element: y = (out_t)((x << x_shift) + (b[i] << b_shift)) at sum_frac
// fraction bits.
template <class CFG>
void bias_add(HETERO_IN_STREAM(CFG) &in, HETERO_OUT_STREAM(CFG) &out, const typename CFG::b_t b[]) {
    HETERO_READ_INPUT(CFG, in, x);
    HETERO_OUTPUT(CFG, y);
BiasAdd:
    for (int i = 0; i < CFG::n; i++) {
#pragma HLS PIPELINE II = 1
        const raw_t v = (raw_t)((unsigned long long)raw_of(x[i]) << CFG::x_shift) +
                        (raw_t)((unsigned long long)(raw_t)b[CFG::n_b == 1 ? 0 : i] << CFG::b_shift);
        y[i] = from_raw<typename CFG::out_t>(requantize<typename CFG::out_t, CFG::sum_frac>(v));
    }
    HETERO_WRITE_OUTPUT(CFG, y, out);
}

// Add, Sub, Mul of two tensors of one shape, on a = x0 - z0, b = x1 - z1 (CFG::op: 0 Add,
// 1 Sub, 2 Mul). Plain fixed point (CFG::plain): Add/Sub align both to sum_frac fraction bits
// and assign to out_t; Mul assigns the product (at sum_frac). Otherwise one requantization:
// requant(a * m0 +- b * m1, 1, 0) for Add/Sub, requant(a * b, m0, 0) for Mul.
template <class CFG>
void add2(hls::stream<beat<typename CFG::in0_t, CFG::in0_lanes> > &in0,
          hls::stream<beat<typename CFG::in1_t, CFG::in1_lanes> > &in1, HETERO_OUT_STREAM(CFG) &out,
          const typename CFG::mult_t mult[]) {
    static typename CFG::in0_t a[CFG::n];
    static typename CFG::in1_t b[CFG::n];
    read_tensor<typename CFG::in0_t, CFG::in0_beats, CFG::in0_lanes, CFG::in0_cl>(in0, a);
    read_tensor<typename CFG::in1_t, CFG::in1_beats, CFG::in1_lanes, CFG::in1_cl>(in1, b);
    HETERO_OUTPUT(CFG, y);
Add2:
    for (int i = 0; i < CFG::n; i++) {
#pragma HLS PIPELINE II = 1
        const raw_t va = raw_of(a[i]) - CFG::zero0;
        raw_t vb = raw_of(b[i]) - CFG::zero1;
        if (CFG::op == 1) vb = -vb;
        raw_t v;
        if (CFG::op == 2) {
            v = CFG::plain ? requantize<typename CFG::out_t, CFG::sum_frac>(va * vb)
                           : requant<typename CFG::rq>(va * vb, mult[0], 0);
        } else if (CFG::plain) {
            v = requantize<typename CFG::out_t, CFG::sum_frac>((raw_t)((unsigned long long)va << CFG::shift0) +
                                                                (raw_t)((unsigned long long)vb << CFG::shift1));
        } else {
            v = requant<typename CFG::rq>(va * (raw_t)mult[0] + vb * (raw_t)mult[1], 1, 0);
        }
        y[i] = from_raw<typename CFG::out_t>(v);
    }
    HETERO_WRITE_OUTPUT(CFG, y, out);
}

// One input of a concatenation converted to the output type: kept (mode 0), assigned at its
// fraction bits (mode 1, plain fixed point) or requantized (mode 2, requant(x - in_zero, mult, 0)).
template <class P, class OUT_T>
inline raw_t concat_convert(raw_t v, raw_t mult) {
    if (P::mode == 0) return v;
    if (P::mode == 1) return requantize<OUT_T, P::frac>(v);
    return requant<P>(v - P::in_zero, mult, 0);
}

// Concat of two tensors along an axis: outer blocks of size0 and size1 values in flat order.
template <class CFG>
void concat2(hls::stream<beat<typename CFG::in0_t, CFG::in0_lanes> > &in0,
             hls::stream<beat<typename CFG::in1_t, CFG::in1_lanes> > &in1, HETERO_OUT_STREAM(CFG) &out,
             const typename CFG::mult0_t mult0[], const typename CFG::mult1_t mult1[]) {
    static typename CFG::in0_t a[CFG::outer * CFG::size0];
    static typename CFG::in1_t b[CFG::outer * CFG::size1];
    read_tensor<typename CFG::in0_t, CFG::in0_beats, CFG::in0_lanes, CFG::in0_cl>(in0, a);
    read_tensor<typename CFG::in1_t, CFG::in1_beats, CFG::in1_lanes, CFG::in1_cl>(in1, b);
    HETERO_OUTPUT(CFG, y);
Concat:
    for (int o = 0; o < CFG::outer; o++) {
        for (int k = 0; k < CFG::size0; k++)
            y[o * (CFG::size0 + CFG::size1) + k] = from_raw<typename CFG::out_t>(
                concat_convert<typename CFG::p0, typename CFG::out_t>(raw_of(a[o * CFG::size0 + k]), mult0[0]));
        for (int k = 0; k < CFG::size1; k++)
            y[o * (CFG::size0 + CFG::size1) + CFG::size0 + k] = from_raw<typename CFG::out_t>(
                concat_convert<typename CFG::p1, typename CFG::out_t>(raw_of(b[o * CFG::size1 + k]), mult1[0]));
    }
    HETERO_WRITE_OUTPUT(CFG, y, out);
}

}  // namespace hetero

#endif
