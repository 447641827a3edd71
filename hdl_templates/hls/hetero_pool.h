// hetero: pooling (hetero/ops/pool.py), 1D (as one row) or 2D, channels-first or channels-last.
// MaxPool: the largest raw value of each window, cells outside the image reading the type's
// minimum. AveragePool: the exact sum of (x - zero_point) over the window (outside cells add
// 0), then requant(sum, mult[p], add[p]) with p the output position where the count varies.
#ifndef HETERO_POOL_H
#define HETERO_POOL_H

#include "hetero_common.h"

namespace hetero {

template <class CFG>
void pool(HETERO_IN_STREAM(CFG) &in, HETERO_OUT_STREAM(CFG) &out, const typename CFG::mult_t mult[],
          const typename CFG::add_t add[]) {
    HETERO_READ_INPUT(CFG, in, x);
    HETERO_OUTPUT(CFG, y);
    const int C = CFG::channels, IH = CFG::in_h, IW = CFG::in_w, OH = CFG::out_h, OW = CFG::out_w;
PoolPixels:
    for (int oy = 0; oy < OH; oy++) {
        for (int ox = 0; ox < OW; ox++) {
            for (int c = 0; c < C; c++) {
#pragma HLS PIPELINE II = 1
                raw_t acc = CFG::is_max ? CFG::fill : 0;
                for (int ky = 0; ky < CFG::k_h; ky++) {
                    const int iy = oy * CFG::stride_h - CFG::pad_top + ky * CFG::dil_h;
                    for (int kx = 0; kx < CFG::k_w; kx++) {
                        const int ix = ox * CFG::stride_w - CFG::pad_left + kx * CFG::dil_w;
                        if (iy < 0 || iy >= IH || ix < 0 || ix >= IW) continue;  // fill / 0
                        const int xi = CFG::channels_last ? (iy * IW + ix) * C + c : (c * IH + iy) * IW + ix;
                        const raw_t v = raw_of(x[xi]);
                        if (CFG::is_max)
                            acc = v > acc ? v : acc;
                        else
                            acc += v - CFG::zero_point;
                    }
                }
                const int p = oy * OW + ox;
                if (!CFG::is_max) {
                    const int k = CFG::rq::n_mult == 1 ? 0 : p;
                    acc = requant<typename CFG::rq>(acc, mult[k], add[k]);
                }
                const int yi = CFG::channels_last ? p * C + c : c * OH * OW + p;
                y[yi] = from_raw<typename CFG::out_t>(acc);
            }
        }
    }
    HETERO_WRITE_OUTPUT(CFG, y, out);
}

}  // namespace hetero

#endif
