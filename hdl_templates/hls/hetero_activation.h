// hetero: elementwise activations and the softmax (hetero/ops/relu.py, clip.py, leaky_relu.py,
// prelu.py, sigmoid.py, softmax.py). Tables are constant arrays computed by the same Python functions the
// reference uses (weights.h); here only the indexing.
#ifndef HETERO_ACTIVATION_H
#define HETERO_ACTIVATION_H

#include "hetero_common.h"

namespace hetero {

// Relu. Plain fixed point: x > 0 ? (out_t)x : 0. On a model quantizer's integers:
// max(x, zero_point) (CFG::centre).
template <class CFG>
void relu(HETERO_IN_STREAM(CFG) &in, HETERO_OUT_STREAM(CFG) &out) {
    HETERO_READ_INPUT(CFG, in, x);
    HETERO_OUTPUT(CFG, y);
Relu:
    for (int i = 0; i < CFG::n; i++) {
#pragma HLS PIPELINE II = 1
        const raw_t v = raw_of(x[i]);
        if (CFG::centre) {
            y[i] = from_raw<typename CFG::out_t>(v > CFG::zero_point ? v : (raw_t)CFG::zero_point);
        } else {
            typename CFG::out_t r = x[i];
            y[i] = v > 0 ? r : from_raw<typename CFG::out_t>(0);
        }
    }
    HETERO_WRITE_OUTPUT(CFG, y, out);
}

// Clip: min(max(x, lo), hi) on raw values.
template <class CFG>
void clip(HETERO_IN_STREAM(CFG) &in, HETERO_OUT_STREAM(CFG) &out) {
    HETERO_READ_INPUT(CFG, in, x);
    HETERO_OUTPUT(CFG, y);
Clip:
    for (int i = 0; i < CFG::n; i++) {
#pragma HLS PIPELINE II = 1
        raw_t v = raw_of(x[i]);
        v = v < CFG::lo ? CFG::lo : v;
        v = v > CFG::hi ? CFG::hi : v;
        y[i] = from_raw<typename CFG::out_t>(v);
    }
    HETERO_WRITE_OUTPUT(CFG, y, out);
}

// LeakyRelu, PRelu: c = x - zero_point; c >= 0 ? requant_pos(c) : requant_neg(c), each
// requantization with one multiplier and offset, or one per element (PRelu's slope).
template <class CFG>
void leaky_relu(HETERO_IN_STREAM(CFG) &in, HETERO_OUT_STREAM(CFG) &out, const typename CFG::pos_mult_t pos_mult[],
                const typename CFG::pos_add_t pos_add[], const typename CFG::neg_mult_t neg_mult[],
                const typename CFG::neg_add_t neg_add[]) {
    HETERO_READ_INPUT(CFG, in, x);
    HETERO_OUTPUT(CFG, y);
Leaky:
    for (int i = 0; i < CFG::n; i++) {
#pragma HLS PIPELINE II = 1
        const raw_t c = raw_of(x[i]) - CFG::zero_point;
        const int p = CFG::pos::n_mult == 1 ? 0 : i;
        const int k = CFG::neg::n_mult == 1 ? 0 : i;
        const raw_t v = c >= 0 ? requant<typename CFG::pos>(c, pos_mult[p], pos_add[p])
                               : requant<typename CFG::neg>(c, neg_mult[k], neg_add[k]);
        y[i] = from_raw<typename CFG::out_t>(v);
    }
    HETERO_WRITE_OUTPUT(CFG, y, out);
}

// A function by table (Sigmoid, Tanh, Softplus, Elu, Selu, HardSigmoid).
//  * binned (CFG::binned): index = (x << bin_shift) + bin_base (a right shift when negative),
//    clamped to [0, table_size - 1]; y = table[index]; where CFG::has_line and x >= line_start,
//    y = requant_line(x) instead; without a table (CFG::table_size == 0) the line everywhere;
//  * full (model-quantized inputs): y = table[clamp(x - first, 0, table_size - 1)].
template <class CFG>
void table_activation(HETERO_IN_STREAM(CFG) &in, HETERO_OUT_STREAM(CFG) &out, const typename CFG::table_t table[],
                      const typename CFG::line_mult_t line_mult[], const typename CFG::line_add_t line_add[]) {
    HETERO_READ_INPUT(CFG, in, x);
    HETERO_OUTPUT(CFG, y);
Table:
    for (int i = 0; i < CFG::n; i++) {
#pragma HLS PIPELINE II = 1
        const raw_t v = raw_of(x[i]);
        raw_t r;
        if (CFG::binned) {
            raw_t idx = (CFG::bin_shift >= 0 ? (raw_t)((unsigned long long)v << CFG::bin_shift) : (v >> -CFG::bin_shift)) + CFG::bin_base;
            idx = idx < 0 ? 0 : (idx > CFG::table_size - 1 ? CFG::table_size - 1 : idx);
            const bool on_line = CFG::table_size == 0 || (CFG::has_line && v >= CFG::line_start);
            r = on_line ? requant<typename CFG::line>(v, line_mult[0], line_add[0]) : (raw_t)table[CFG::table_size ? idx : 0];
        } else {
            raw_t idx = v - CFG::first;
            idx = idx < 0 ? 0 : (idx > CFG::table_size - 1 ? CFG::table_size - 1 : idx);
            r = table[idx];
        }
        y[i] = from_raw<typename CFG::out_t>(r);
    }
    HETERO_WRITE_OUTPUT(CFG, y, out);
}

// Softmax as argmax over the last axis (groups of CFG::group values): the index of the first
// largest value.
template <class CFG>
void argmax(HETERO_IN_STREAM(CFG) &in, HETERO_OUT_STREAM(CFG) &out) {
    HETERO_READ_INPUT(CFG, in, x);
    HETERO_OUTPUT(CFG, y);
Argmax:
    for (int g = 0; g < CFG::n / CFG::group; g++) {
        raw_t best = raw_of(x[g * CFG::group]);
        int arg = 0;
        for (int k = 1; k < CFG::group; k++) {
#pragma HLS PIPELINE II = 1
            const raw_t v = raw_of(x[g * CFG::group + k]);
            if (v > best) {
                best = v;
                arg = k;
            }
        }
        y[g] = from_raw<typename CFG::out_t>(arg);
    }
    HETERO_WRITE_OUTPUT(CFG, y, out);
}

// Integer softmax over the last axis (hetero.ops.softmax.softmax_integers):
// d = max - x; e = T[min(d >> exp_shift, len(T) - 1)]; R = 2**div_bits / sum(e); y = requant(e * R).
template <class CFG>
void softmax_table(HETERO_IN_STREAM(CFG) &in, HETERO_OUT_STREAM(CFG) &out, const typename CFG::exp_table_t exp_table[],
                   const typename CFG::mult_t mult[], const typename CFG::add_t add[]) {
    HETERO_READ_INPUT(CFG, in, x);
    HETERO_OUTPUT(CFG, y);
    raw_t e[CFG::group];
Softmax:
    for (int g = 0; g < CFG::n / CFG::group; g++) {
        raw_t best = raw_of(x[g * CFG::group]);
        for (int k = 1; k < CFG::group; k++) {
            const raw_t v = raw_of(x[g * CFG::group + k]);
            best = v > best ? v : best;
        }
        raw_t total = 0;
        for (int k = 0; k < CFG::group; k++) {
            raw_t idx = (best - raw_of(x[g * CFG::group + k])) >> CFG::exp_shift;
            idx = idx > CFG::exp_entries - 1 ? CFG::exp_entries - 1 : idx;
            e[k] = exp_table[idx];
            total += e[k];
        }
        const raw_t recip = ((raw_t)1 << CFG::div_bits) / total;
        for (int k = 0; k < CFG::group; k++)
            y[g * CFG::group + k] = from_raw<typename CFG::out_t>(requant<typename CFG::rq>(e[k] * recip, mult[0], add[0]));
    }
    HETERO_WRITE_OUTPUT(CFG, y, out);
}

}  // namespace hetero

#endif
