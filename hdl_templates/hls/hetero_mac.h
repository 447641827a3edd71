// hetero: layers that multiply by constant weights and sum (Dense, Conv), as
// hetero/ops/mac.py defines them. The sum is exact: acc = sum((x - zero_point) * w).
// Epilogue, per output channel c:
//  * plain fixed point (CFG::plain): sum_t s = acc + bias (aligned); accum_t a = s; out_t y = a;
//  * otherwise: y = requant(acc, mult[c], add[c]) (CFG::rq), then max(y, 0) if CFG::relu, or the
//    sign (+1 / -1) of acc * mult[c] + add[c] for a bipolar output quantizer (CFG::bipolar).
// Parallelism (hetero.folding): CFG::pe output channels times CFG::simd inputs per step.
#ifndef HETERO_MAC_H
#define HETERO_MAC_H

#include "hetero_common.h"

namespace hetero {

template <class CFG>
inline raw_t mac_epilogue(raw_t acc, int c, const typename CFG::b_t bias[], const typename CFG::mult_t mult[],
                          const typename CFG::add_t add[]) {
#pragma HLS INLINE
    if (CFG::plain) {
        raw_t v = (raw_t)((unsigned long long)acc << CFG::prod_shift) +
                  (raw_t)((unsigned long long)(raw_t)bias[CFG::n_bias == 1 ? 0 : c] << CFG::bias_shift);
        typename CFG::sum_t s = from_raw<typename CFG::sum_t>(v);
        typename CFG::accum_t a = s;
        typename CFG::out_t y = a;
        return raw_of(y);
    }
    const int k = CFG::rq::n_mult == 1 ? 0 : c;
    if (CFG::bipolar) return acc * (raw_t)mult[k] + (raw_t)add[k] >= 0 ? 1 : -1;
    raw_t y = requant<typename CFG::rq>(acc, mult[k], add[k]);
    if (CFG::relu && y < 0) y = 0;
    return y;
}

// Dense: y[j] = epilogue(sum_i (x[i] - zp) * w[i * n_out + j]).
template <class CFG>
void dense(HETERO_IN_STREAM(CFG) &in, HETERO_OUT_STREAM(CFG) &out, const typename CFG::w_t w[],
           const typename CFG::b_t bias[], const typename CFG::mult_t mult[], const typename CFG::add_t add[]) {
    HETERO_READ_INPUT(CFG, in, x);
    HETERO_OUTPUT(CFG, y);
    raw_t acc[CFG::n_out];
#pragma HLS ARRAY_PARTITION variable = acc cyclic factor = CFG::pe
#pragma HLS ARRAY_PARTITION variable = x cyclic factor = CFG::simd
    for (int j = 0; j < CFG::n_out; j++) acc[j] = 0;
DenseFold:
    for (int nf = 0; nf < CFG::n_out; nf += CFG::pe) {
        for (int sf = 0; sf < CFG::n_in; sf += CFG::simd) {
#pragma HLS PIPELINE II = 1
            for (int p = 0; p < CFG::pe; p++) {
#pragma HLS UNROLL
                for (int s = 0; s < CFG::simd; s++) {
#pragma HLS UNROLL
                    const int i = sf + s, j = nf + p;
                    if (i < CFG::n_in && j < CFG::n_out)
                        acc[j] += (raw_of(x[i]) - CFG::zero_point) * (raw_t)w[i * CFG::n_out + j];
                }
            }
        }
    }
    for (int j = 0; j < CFG::n_out; j++) y[j] = from_raw<typename CFG::out_t>(mac_epilogue<CFG>(acc[j], j, bias, mult, add));
    HETERO_WRITE_OUTPUT(CFG, y, out);
}

// Conv, 1D (as one row) or 2D, channels-first or channels-last, strides, dilations, pads (the
// padding reads the zero point: 0 once centred), groups. Weights w[o][c/group][ky][kx].
template <class CFG>
void conv(HETERO_IN_STREAM(CFG) &in, HETERO_OUT_STREAM(CFG) &out, const typename CFG::w_t w[],
          const typename CFG::b_t bias[], const typename CFG::mult_t mult[], const typename CFG::add_t add[]) {
    HETERO_READ_INPUT(CFG, in, x);
    HETERO_OUTPUT(CFG, y);
    const int C = CFG::in_channels, O = CFG::out_channels, CG = C / CFG::group, OG = O / CFG::group;
    const int IH = CFG::in_h, IW = CFG::in_w, OH = CFG::out_h, OW = CFG::out_w;
ConvPixels:
    for (int oy = 0; oy < OH; oy++) {
        for (int ox = 0; ox < OW; ox++) {
        ConvChannels:
            for (int o = 0; o < O; o++) {
#pragma HLS PIPELINE II = CFG::fold
                const int g = o / OG;
                raw_t acc = 0;
                for (int ky = 0; ky < CFG::k_h; ky++) {
                    const int iy = oy * CFG::stride_h - CFG::pad_top + ky * CFG::dil_h;
                    for (int kx = 0; kx < CFG::k_w; kx++) {
                        const int ix = ox * CFG::stride_w - CFG::pad_left + kx * CFG::dil_w;
                        if (iy < 0 || iy >= IH || ix < 0 || ix >= IW) continue;  // padding: 0 once centred
                        for (int cg = 0; cg < CG; cg++) {
                            const int c = g * CG + cg;
                            const int xi = CFG::channels_last ? (iy * IW + ix) * C + c : (c * IH + iy) * IW + ix;
                            acc += (raw_of(x[xi]) - CFG::zero_point) *
                                   (raw_t)w[((o * CG + cg) * CFG::k_h + ky) * CFG::k_w + kx];
                        }
                    }
                }
                const int yi = CFG::channels_last ? (oy * OW + ox) * O + o : (o * OH + oy) * OW + ox;
                y[yi] = from_raw<typename CFG::out_t>(mac_epilogue<CFG>(acc, o, bias, mult, add));
            }
        }
    }
    HETERO_WRITE_OUTPUT(CFG, y, out);
}

}  // namespace hetero

#endif
