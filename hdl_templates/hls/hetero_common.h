// hetero: what every layer kernel shares. Values travel between layers as beats of lanes
// (hetero.hw.stream): a tensor with spatial axes is streamed pixel by pixel, each beat carrying
// that pixel's channels; a vector is one beat. Inside a kernel a tensor is held in the IR's flat
// (row-major) order, and all arithmetic is done on raw integers (the ap_fixed value times
// 2**frac_bits) in 64-bit integers, exactly as the Python reference (hetero/ops/*.py) does.
#ifndef HETERO_COMMON_H
#define HETERO_COMMON_H

#ifdef HETERO_CSIM
#include "hetero_csim_shim.h"
#else
#include <ap_axi_sdata.h>
#include <hls_stream.h>
#endif
#include "ap_fixed.h"
#include "ap_int.h"

namespace hetero {

typedef long long raw_t;

// One stream beat: LANES values of type T.
template <class T, int LANES>
struct beat {
    T v[LANES];
};

// -- raw integers <-> ap_fixed ------------------------------------------------------------------
template <int W, int I, ap_q_mode Q, ap_o_mode O, int N>
inline raw_t raw_of(const ap_fixed<W, I, Q, O, N> &x) {
    ap_int<W> r;
    r.range(W - 1, 0) = x.range(W - 1, 0);
    return r.to_int64();
}

template <int W, int I, ap_q_mode Q, ap_o_mode O, int N>
inline raw_t raw_of(const ap_ufixed<W, I, Q, O, N> &x) {
    ap_uint<W> r;
    r.range(W - 1, 0) = x.range(W - 1, 0);
    return (raw_t)r.to_uint64();
}

template <class T>
inline T from_raw(raw_t v) {
    T y;
    ap_int<64> w = v;
    y.range(T::width - 1, 0) = w.range(T::width - 1, 0);
    return y;
}

// ``DST y = x`` where x has SRC_FRAC fraction bits and raw value v (|v| < 2**61): the ap_fixed
// assignment itself, so DST's quantization and overflow modes apply (hetero.fixed.requantize).
template <class DST, int SRC_FRAC>
inline raw_t requantize(raw_t v) {
    ap_fixed<62, 62 - SRC_FRAC> src = from_raw<ap_fixed<62, 62 - SRC_FRAC> >(v);
    DST y = src;
    return raw_of(y);
}

// -- exact integer requantization (hetero.quant.Requant) ----------------------------------------
enum rounding { FLOOR = 0, CEIL, TO_ZERO, HALF_UP, HALF_EVEN, HALF_AWAY, HALF_ZERO, HALF_DOWN };
enum overflow { OVF_CLIP = 0, OVF_WRAP, OVF_SAT, OVF_SAT_ZERO, OVF_SAT_SYM };

// round(v / 2**shift) with a rounding mode (hetero.quant.round_shift).
template <int MODE>
inline raw_t round_shift(raw_t v, int shift) {
    if (shift <= 0) return (raw_t)((unsigned long long)v << (-shift));
    raw_t fl = v >> shift;
    raw_t rem = v - (raw_t)((unsigned long long)fl << shift);
    raw_t half = (raw_t)1 << (shift - 1);
    if (MODE == FLOOR) return fl;
    if (MODE == CEIL) return fl + (rem != 0);
    if (MODE == TO_ZERO) return fl + ((rem != 0) && (v < 0));
    bool up = rem > half;
    bool tie = rem == half;
    if (MODE == HALF_UP) up = up || tie;
    if (MODE == HALF_EVEN) up = up || (tie && (fl & 1));
    if (MODE == HALF_AWAY) up = up || (tie && v >= 0);
    if (MODE == HALF_ZERO) up = up || (tie && v < 0);
    return fl + up;
}

// An integer into a W-bit (signed or not) range with an ap_fixed overflow mode
// (hetero.fixed._overflow).
template <int MODE, int W, bool SIGNED>
inline raw_t overflow_raw(raw_t v) {
    const raw_t lo = SIGNED ? -((raw_t)1 << (W - 1)) : 0;
    const raw_t hi = SIGNED ? ((raw_t)1 << (W - 1)) - 1 : (raw_t)((1ULL << W) - 1);
    if (MODE == OVF_WRAP) {
        unsigned long long mask = W >= 64 ? ~0ULL : ((1ULL << W) - 1);
        raw_t w = (raw_t)((unsigned long long)v & mask);
        if (SIGNED && w > hi) w -= (raw_t)(1ULL << W);
        return w;
    }
    raw_t l = lo;
    if (MODE == OVF_SAT_SYM && SIGNED && W > 1) l = -hi;
    if (MODE == OVF_SAT_ZERO) return (v < lo || v > hi) ? 0 : v;
    return v < l ? l : (v > hi ? hi : v);
}

// y = clip(round((x * mult + add) / 2**shift) + zero, lo, hi), or the overflow of a type.
// RQ: a config with shift, zero, lo, hi, rounding, ovf, ovf_width, ovf_signed.
template <class RQ>
inline raw_t requant(raw_t x, raw_t mult, raw_t add) {
    raw_t y = round_shift<RQ::rounding>(x * mult + add, RQ::shift) + RQ::zero;
    if (RQ::ovf != OVF_CLIP) {
        const raw_t big = (raw_t)1 << 62;
        y = y < -big ? -big : (y > big ? big : y);
        return overflow_raw<RQ::ovf, RQ::ovf_width, RQ::ovf_signed>(y);
    }
    return y < RQ::lo ? RQ::lo : (y > RQ::hi ? RQ::hi : y);
}

// -- tensors: a stream of beats <-> a buffer in IR flat order -----------------------------------
// A tensor of BEATS beats of LANES lanes; channels-first images (C, pixels) are stored c*P + p,
// channels-last ones and vectors p*C + c.
template <class T, int BEATS, int LANES, bool CHANNELS_LAST>
inline int flat_index(int b, int l) {
    return (CHANNELS_LAST || BEATS == 1) ? b * LANES + l : l * BEATS + b;
}

// A layer's input tensor, read whole into ``buf`` (IR flat order).
template <class T, int BEATS, int LANES, bool CHANNELS_LAST>
void read_tensor(hls::stream<beat<T, LANES> > &in, T buf[BEATS * LANES]) {
ReadBeats:
    for (int b = 0; b < BEATS; b++) {
#pragma HLS PIPELINE II = 1
        beat<T, LANES> x = in.read();
        for (int l = 0; l < LANES; l++) buf[flat_index<T, BEATS, LANES, CHANNELS_LAST>(b, l)] = x.v[l];
    }
}

// A layer's output tensor ``buf`` (IR flat order) sent as beats.
template <class T, int BEATS, int LANES, bool CHANNELS_LAST>
void write_tensor(const T buf[BEATS * LANES], hls::stream<beat<T, LANES> > &out) {
WriteBeats:
    for (int b = 0; b < BEATS; b++) {
#pragma HLS PIPELINE II = 1
        beat<T, LANES> y;
        for (int l = 0; l < LANES; l++) y.v[l] = buf[flat_index<T, BEATS, LANES, CHANNELS_LAST>(b, l)];
        out.write(y);
    }
}

// The input and output buffers of a layer whose config CFG describes both tensors (in_t,
// in_beats, in_lanes, in_cl; out_t, out_beats, out_lanes, out_cl).
#define HETERO_READ_INPUT(CFG, in, x)                                                   \
    static typename CFG::in_t x[CFG::in_beats * CFG::in_lanes];                          \
    hetero::read_tensor<typename CFG::in_t, CFG::in_beats, CFG::in_lanes, CFG::in_cl>(in, x)
#define HETERO_OUTPUT(CFG, y) static typename CFG::out_t y[CFG::out_beats * CFG::out_lanes]
#define HETERO_WRITE_OUTPUT(CFG, y, out) \
    hetero::write_tensor<typename CFG::out_t, CFG::out_beats, CFG::out_lanes, CFG::out_cl>(y, out)
#define HETERO_IN_STREAM(CFG) hls::stream<hetero::beat<typename CFG::in_t, CFG::in_lanes> >
#define HETERO_OUT_STREAM(CFG) hls::stream<hetero::beat<typename CFG::out_t, CFG::out_lanes> >

// -- the AXI4-Stream ports of the top level -----------------------------------------------------
// TDATA of a beat: lane k at bits [k*W +: W], raw two's complement (or unsigned) values.
template <class T, int BEATS, int LANES, class AXIS>
void axis_to_stream(hls::stream<AXIS> &in, hls::stream<beat<T, LANES> > &out) {
AxisIn:
    for (int b = 0; b < BEATS; b++) {
#pragma HLS PIPELINE II = 1
        AXIS a = in.read();
        beat<T, LANES> x;
        for (int l = 0; l < LANES; l++) x.v[l].range(T::width - 1, 0) = a.data.range(l * T::width + T::width - 1, l * T::width);
        out.write(x);
    }
}

template <class T, int BEATS, int LANES, class AXIS>
void stream_to_axis(hls::stream<beat<T, LANES> > &in, hls::stream<AXIS> &out) {
AxisOut:
    for (int b = 0; b < BEATS; b++) {
#pragma HLS PIPELINE II = 1
        beat<T, LANES> x = in.read();
        AXIS a;
        for (int l = 0; l < LANES; l++) a.data.range(l * T::width + T::width - 1, l * T::width) = x.v[l].range(T::width - 1, 0);
        a.keep = -1;
        a.strb = -1;
        a.last = (b == BEATS - 1);
        out.write(a);
    }
}

// One stream to two or three consumers.
template <class B, int BEATS>
void fork2(hls::stream<B> &in, hls::stream<B> &o0, hls::stream<B> &o1) {
    for (int b = 0; b < BEATS; b++) {
#pragma HLS PIPELINE II = 1
        B x = in.read();
        o0.write(x);
        o1.write(x);
    }
}

template <class B, int BEATS>
void fork3(hls::stream<B> &in, hls::stream<B> &o0, hls::stream<B> &o1, hls::stream<B> &o2) {
    for (int b = 0; b < BEATS; b++) {
#pragma HLS PIPELINE II = 1
        B x = in.read();
        o0.write(x);
        o1.write(x);
        o2.write(x);
    }
}

}  // namespace hetero

#endif
